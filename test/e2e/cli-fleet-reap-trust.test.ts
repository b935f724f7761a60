// The scheduler daemon's fleet reaper, with the built CLI and local fleets (agents on this
// machine), against records planted in Redis by someone holding no gaxx key: a fleet spawned
// without --ttl/--budget, given an expired limits record in Redis, is not deleted; nor is a fleet
// whose own TTL is an hour away and whose record in Redis was rewritten to an expired one; each
// refusal is a warning naming the fleet. A fleet whose own TTL passed is still deleted.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FleetCa } from '../../certs/index.js';
import { readFleet } from '../../cli/state.js';
import { createRedis, redisSettingsFromUrl, waitReady } from '../../scheduler/index.js';
import { runGaxx, spawnGaxx } from '../helpers/cli.js';
import { eventually } from '../helpers/poll.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const LONG = 300_000;
let home: string;
let redis: TestRedis;
let env: Record<string, string>;

const gaxx = (args: string[]) => runGaxx(args, { home, env, timeoutMs: LONG });

async function fleets(): Promise<string[]> {
  const ls = await gaxx(['ls', '--json']);
  expect(ls.code, ls.stderr).toBe(0);
  return (JSON.parse(ls.stdout) as { fleet: string }[]).map((f) => f.fleet).sort();
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'gxreap-'));
  redis = await startRedis();
  env = { GAXX_REDIS_URL: redis.url, GAXX_AGENT_PORT: String(await freePort()) };
  const init = await gaxx(['init', '--name', 'alice']);
  expect(init.code, init.stderr).toBe(0);
}, LONG);

afterAll(async () => {
  // The local fleets' agents are processes of this machine: stop those the test left.
  if (home && existsSync(join(home, 'state', 'fleets'))) for (const f of await fleets()) await gaxx(['delete', f, '--yes']);
  await redis?.destroy();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe("the daemon's reaper acts on the operator's own record of a fleet's limits", () => {
  it(
    'a planted expired record deletes nothing and is logged; a fleet past its own TTL is deleted',
    async () => {
      for (const args of [
        ['--fleet', 'plain'],
        ['--fleet', 'hour', '--ttl', '1h'],
      ]) {
        const r = await gaxx(['spawn', '--provider', 'local', '--count', '1', ...args]);
        expect(r.code, r.stderr).toBe(0);
      }
      const conn = createRedis(redisSettingsFromUrl(redis.url), 'producer');
      await waitReady(conn);
      const hourSince = readFleet(join(home, 'state', 'fleets'), 'hour')?.limits?.since as number;
      // What a Redis writer can do with two commands per fleet.
      await conn.set('{gaxx}:fleet-limits:plain', JSON.stringify({ expiresAt: 1, since: 1, currency: 'USD', pricePerHour: 0 }));
      await conn.set('{gaxx}:fleet-limits:hour', JSON.stringify({ expiresAt: 1, since: hourSince, currency: 'USD', pricePerHour: 0 }));
      await conn.sadd('{gaxx}:fleet-limits', 'plain', 'hour');
      const daemon = spawnGaxx(['scheduler', '--reap-interval', '1s', '--metrics-listen', '127.0.0.1:0', '--ui-listen', '127.0.0.1:0'], { home, env });
      try {
        const made = await gaxx(['spawn', '--provider', 'local', '--count', '1', '--fleet', 'short', '--ttl', '2s']);
        expect(made.code, made.stderr).toBe(0);
        expect(await eventually(async () => !(await fleets()).includes('short'), 120_000), daemon.stderr()).toBe(true);
        const refusals = (): Array<{ fleet: string; why: string }> =>
          daemon
            .stderr()
            .split('\n')
            .filter((l) => l.includes('"level":40') && l.includes('"why"'))
            .map((l) => JSON.parse(l) as { fleet: string; why: string });
        expect(await eventually(() => refusals().length >= 2, 30_000), daemon.stderr()).toBe(true);
        expect(
          refusals()
            .map((r) => r.fleet)
            .sort(),
        ).toEqual(['hour', 'plain']);
        // Logged once the fleet is gone from the state: the log may reach us after it.
        await vi.waitFor(() => expect(daemon.stderr()).toMatch(/"fleet":"short","reason":"ttl".*"fleet deleted"/), { timeout: 30_000, interval: 50 });
        expect(daemon.stderr()).not.toMatch(/"fleet":"(plain|hour)"[^\n]*deleting it/);

        // Both are whole: state, certificates, and agents that run their tasks.
        expect(await fleets()).toEqual(['hour', 'plain']);
        const ca = FleetCa.open(join(home, 'config', 'ca'));
        const revoked = ca.revoked();
        const certs = ca.list().filter((c) => c.identity.role === 'agent' && ['plain', 'hour'].includes(c.identity.fleet as string));
        expect(certs.length).toBeGreaterThanOrEqual(2);
        expect(certs.some((c) => revoked.has(c.serial))).toBe(false);
        for (const f of ['plain', 'hour']) {
          const run = await gaxx(['run', '--fleet', f, '--', 'true']);
          expect(run.code, `${f}: ${run.stderr}`).toBe(0);
        }
      } finally {
        daemon.kill('SIGTERM');
        await daemon.done;
        conn.disconnect();
      }
    },
    LONG,
  );
});
