// A Redis restarted without its data (no AOF, no snapshots) forgets the fleet directory: every
// command naming a fleet this home spawned said "unknown fleet" until the fleet was spawned
// again. The fleet is registered again from the home's state instead (agents, TTL and budget), by
// whichever command meets it first, with a note; a fleet deleted since is not. The built CLI, a
// local fleet of one agent, a real redis-server restarted empty between the commands.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { createRedis, fleetAgents, redisSettingsFromUrl, registeredFleets, waitReady } from '../../scheduler/index.js';
import { getFleetLimits } from '../../scheduler/queue/fleet-limits.js';
import { localFleetHome, type LocalFleetHome } from '../helpers/cli-world.js';
import { jsonLines, spawnGaxx } from '../helpers/cli.js';

const LONG = 300_000;
const FLEET = 'rl';
const HOST = 'gaxx-rl-0';
const AGAIN = /fleet rl was not registered in Redis \(restarted without its data\?\): registered again from this home's state \(1 hosts\)/;
let world: LocalFleetHome;
let scratch: string;

const gaxx = (args: string[]) => world.gaxx(args);

/** Stops Redis and starts it again on the same address: it persists nothing, so it comes back empty. */
async function restartEmpty(): Promise<void> {
  await world.redis.stop();
  await world.redis.restart();
  expect(await directory()).toEqual({ fleets: [], agents: [], limits: undefined });
}

/** What Redis holds of the fleet: the registered fleets, its agents' host names, its limits. */
async function directory(): Promise<{ fleets: string[]; agents: string[]; limits: unknown }> {
  const conn = createRedis(redisSettingsFromUrl(world.redis.url), 'producer');
  try {
    await waitReady(conn);
    const limits = await getFleetLimits(conn, FLEET);
    return {
      fleets: await registeredFleets(conn),
      agents: (await fleetAgents(conn, FLEET)).map((a) => a.host),
      limits: limits && { expiresAt: limits.expiresAt },
    };
  } finally {
    conn.disconnect();
  }
}

beforeAll(async () => {
  world = await localFleetHome('gxlost-', { config: ['appendonly no', 'save ""'] });
  scratch = mkdtempSync(join(tmpdir(), 'gxlost-files-'));
}, LONG);

afterAll(async () => {
  await world?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}, LONG);

describe('a fleet Redis forgot', () => {
  it(
    'is registered again from the state by run, status, cp and ui, with its TTL; a deleted one is not',
    async () => {
      const made = await gaxx(['spawn', '--provider', 'local', '--count', '1', '--fleet', FLEET, '--ttl', '2h', '--json']);
      expect(made.code, made.stderr).toBe(0);
      const registered = await directory();
      expect(registered.fleets).toEqual([FLEET]);
      expect(registered.agents).toEqual([HOST]);
      expect(registered.limits).toEqual({ expiresAt: expect.any(Number) as number });

      await restartEmpty();
      const run = await gaxx(['run', '--fleet', FLEET, '--json', '--', 'echo', 'ran']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(AGAIN);
      const tasks = jsonLines(run.stdout).filter((l) => l.type === 'task');
      expect(tasks.map((t) => [t.outcome, t.stdout])).toEqual([['succeeded', 'ran\n']]);
      // As spawn registered it, the TTL too (what a daemon's reaper acts on).
      expect(await directory()).toEqual(registered);

      // `gaxx status` without a fleet lists the fleets of the state too, not only those Redis knows.
      await restartEmpty();
      const status = await gaxx(['status', '--json']);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stderr).toMatch(AGAIN);
      expect((JSON.parse(status.stdout) as { host: string; reachable: boolean }[]).map((s) => [s.host, s.reachable])).toEqual([[HOST, true]]);
      expect(await directory()).toEqual(registered);

      await restartEmpty();
      const file = join(scratch, 'f.txt');
      writeFileSync(file, 'payload\n');
      const cp = await gaxx(['cp', file, `${FLEET}:in/f.txt`, '--json']);
      expect(cp.code, cp.stderr).toBe(0);
      expect(cp.stderr).toMatch(AGAIN);
      expect((JSON.parse(cp.stdout) as { host: string; ok: boolean }[]).map((r) => [r.host, r.ok])).toEqual([[HOST, true]]);

      // The dashboard of the fleet finds its agents: the fleet is registered before it starts.
      await restartEmpty();
      const ui = spawnGaxx(['ui', '--fleet', FLEET, '--listen', '127.0.0.1:0', '--json'], { home: world.home, env: world.env });
      try {
        expect(JSON.parse(await ui.line('stdout', () => true))).toMatchObject({ served: 'here' });
        expect(await directory()).toEqual(registered);
      } finally {
        ui.kill('SIGINT');
        const ended = await ui.done;
        expect(ended.code).toBe(0);
        expect(ended.stderr).toMatch(AGAIN);
      }

      // A fleet Redis knows is used as it stands: no note.
      const again = await gaxx(['run', '--fleet', FLEET, '--', 'true']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).not.toMatch(/registered again/);

      const del = await gaxx(['delete', FLEET, '--yes']);
      expect(del.code, del.stderr).toBe(0);
      const gone = await gaxx(['run', '--fleet', FLEET, '--', 'true']);
      expect(gone.code).toBe(exitCodeFor('NOT_FOUND'));
      expect(gone.stderr).toMatch(/unknown fleet 'rl'/);
      expect(await directory()).toEqual({ fleets: [], agents: [], limits: undefined });
    },
    LONG,
  );
});
