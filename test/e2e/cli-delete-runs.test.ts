// `gaxx delete` of a fleet a run is still using cancels the run first: its `gaxx run` ends at
// once, its tasks `cancelled`, instead of waiting two minutes for agents that will not come back
// and then reporting their outcomes lost (exit 12). The built CLI, a local fleet of one agent,
// a real redis-server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { localFleetHome, type LocalFleetHome } from '../helpers/cli-world.js';
import { spawnGaxx } from '../helpers/cli.js';

const LONG = 300_000;
const FLEET = 'dr';
let world: LocalFleetHome;

beforeAll(async () => {
  world = await localFleetHome('gxdelruns-');
}, LONG);

afterAll(() => world?.close(), LONG);

describe('gaxx delete of a fleet in use', () => {
  it(
    'names the runs in progress (--dry-run), cancels them, and their gaxx run ends cancelled (130)',
    async () => {
      const { home, env, gaxx } = world;
      const made = await gaxx(['spawn', '--provider', 'local', '--count', '1', '--fleet', FLEET]);
      expect(made.code, made.stderr).toBe(0);
      const run = spawnGaxx(['run', '--fleet', FLEET, '--', 'sh', '-c', 'echo up; exec sleep 300'], { home, env });
      const runId = (/^gaxx: run (\S+)$/.exec(await run.line('stderr', (l) => /^gaxx: run \S+$/.test(l))) as RegExpExecArray)[1] as string;
      await run.line('stdout', (l) => l === 'up');
      // A run on another fleet, or done, is none of the delete's business: only this one is named.
      const dry = await gaxx(['delete', FLEET, '--dry-run', '--json']);
      expect(dry.code, dry.stderr).toBe(0);
      expect((JSON.parse(dry.stdout) as { wouldCancelRuns: string[] }).wouldCancelRuns).toEqual([runId]);

      const del = await gaxx(['delete', FLEET, '--yes', '--json']);
      expect(del.code, del.stderr).toBe(0);
      expect(JSON.parse(del.stdout)).toMatchObject({ destroyed: 1, runsCancelled: [runId] });
      // Well before the two minutes a task waits for an agent that went away.
      const ended = await Promise.race([run.done, new Promise<undefined>((r) => setTimeout(r, 60_000, undefined))]);
      expect(ended, 'gaxx run still running 60 s after the delete').toBeDefined();
      expect(ended?.code, ended?.stderr).toBe(exitCodeFor('CANCELLED'));
      expect(ended?.stdout).toMatch(/^== gaxx-dr-0: cancelled/m);
      expect(ended?.stderr).toMatch(new RegExp(`run ${runId}: 1 task: .*1 cancelled`));
      expect(ended?.stderr).not.toMatch(/unknown \(|went away/);
      const shown = await gaxx(['runs', 'show', runId, '--json']);
      expect(shown.code, shown.stderr).toBe(0);
      expect(JSON.parse(shown.stdout)).toMatchObject({ state: 'cancelled', counts: { cancelled: 1 } });
    },
    LONG,
  );

  it(
    'a run whose gaxx run was killed is cancelled once: a fleet spawned again under the name is not said to have it',
    async () => {
      const { home, env, gaxx } = world;
      expect((await gaxx(['spawn', '--provider', 'local', '--count', '1', '--fleet', 'dk'])).code).toBe(0);
      const run = spawnGaxx(['run', '--fleet', 'dk', '--', 'sh', '-c', 'echo up; exec sleep 300'], { home, env });
      const runId = (/^gaxx: run (\S+)$/.exec(await run.line('stderr', (l) => /^gaxx: run \S+$/.test(l))) as RegExpExecArray)[1] as string;
      await run.line('stdout', (l) => l === 'up');
      // Its submitter gone at once: no process follows the run to its end.
      run.kill('SIGKILL');
      await run.done;
      const del = await gaxx(['delete', 'dk', '--yes', '--json']);
      expect(del.code, del.stderr).toBe(0);
      expect(JSON.parse(del.stdout)).toMatchObject({ runsCancelled: [runId] });
      expect((await gaxx(['spawn', '--provider', 'local', '--count', '1', '--fleet', 'dk'])).code).toBe(0);
      // Before: the new fleet's delete named (and cancelled again) the old fleet's run.
      const dry = await gaxx(['delete', 'dk', '--dry-run', '--json']);
      expect(dry.code, dry.stderr).toBe(0);
      expect((JSON.parse(dry.stdout) as { wouldCancelRuns: string[] }).wouldCancelRuns).toEqual([]);
      const again = await gaxx(['delete', 'dk', '--yes', '--json']);
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout)).toMatchObject({ runsCancelled: [] });
    },
    LONG,
  );

  it(
    "the daemon's TTL reaper cancels the runs on the fleet it deletes: their gaxx run ends cancelled (130)",
    async () => {
      const { home, env, gaxx } = world;
      const daemon = spawnGaxx(['scheduler', '--reap-interval', '1s', '--metrics-listen', '127.0.0.1:0', '--ui-listen', '127.0.0.1:0'], { home, env });
      try {
        const made = await gaxx(['spawn', '--provider', 'local', '--count', '1', '--fleet', 'dt', '--ttl', '15s']);
        expect(made.code, made.stderr).toBe(0);
        const run = spawnGaxx(['run', '--fleet', 'dt', '--', 'sh', '-c', 'echo up; exec sleep 300'], { home, env });
        const runId = (/^gaxx: run (\S+)$/.exec(await run.line('stderr', (l) => /^gaxx: run \S+$/.test(l))) as RegExpExecArray)[1] as string;
        await run.line('stdout', (l) => l === 'up');
        // The TTL passes while the task runs; the reaper deletes the fleet, cancelling the run first.
        const ended = await Promise.race([run.done, new Promise<undefined>((r) => setTimeout(r, 90_000, undefined))]);
        expect(ended, `gaxx run still running 90 s after its fleet's TTL: ${daemon.stderr()}`).toBeDefined();
        expect(ended?.code, ended?.stderr).toBe(exitCodeFor('CANCELLED'));
        expect(ended?.stdout).toMatch(/^== gaxx-dt-0: cancelled/m);
        // The run ends before the machines are destroyed: the deletion is logged when it is done.
        await daemon.line('stderr', (l) => /"fleet":"dt","reason":"ttl".*"fleet deleted"/.test(l));
        const shown = await gaxx(['runs', 'show', runId, '--json']);
        expect(JSON.parse(shown.stdout)).toMatchObject({ state: 'cancelled', counts: { cancelled: 1 } });
      } finally {
        daemon.kill('SIGTERM');
        await daemon.done;
      }
    },
    LONG,
  );
});
