// A fleet deleted and spawned again under its name does not run the old fleet's signed work. The
// built CLI, a local fleet of one agent, a real redis-server: `gaxx run --fleet rp` runs a task
// while the test keeps its job as a Redis reader could; then `gaxx delete rp` and `gaxx spawn
// --fleet rp` make a new agent (a new certificate naming rp/gaxx-rp-0, an empty journal); the kept
// job, sent to it over mTLS with the scheduler certificate as a daemon would dispatch it, is
// refused (SIGNED_BEFORE_FLEET) and audited, and a fresh `gaxx run --fleet rp` runs.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetSinceOf, readFleet, type FleetState } from '../../cli/state.js';
import { loadCertDir } from '../../certs/index.js';
import { execTaskId, isGaxxError } from '../../proto/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { redisSettingsFromUrl, TaskQueue } from '../../scheduler/index.js';
import { buildRequest } from '../../scheduler/dispatch/task-dispatch.js';
import { parseTaskSpec, type TaskSpec } from '../../scheduler/queue/task.js';
import { auditEvents } from '../helpers/agent.js';
import { localFleetHome, type LocalFleetHome } from '../helpers/cli-world.js';
import { jsonLines, spawnGaxx } from '../helpers/cli.js';
import { eventually } from '../helpers/poll.js';

const LONG = 300_000;
const FLEET = 'rp';
const HOST = 'gaxx-rp-0';
let world: LocalFleetHome;
let home: string;
let env: Record<string, string>;

const gaxx = (args: string[]) => world.gaxx(args);
const fleetState = (): FleetState => readFleet(join(home, 'state', 'fleets'), FLEET) as FleetState;
/** The local provider's record of the fleet's agent: its process and its files. */
const agentRecord = (): { pid: number; dir: string; address: string; port: number } =>
  JSON.parse(readFileSync(join(home, 'state', 'local', `${FLEET}-${HOST}.json`), 'utf8')) as { pid: number; dir: string; address: string; port: number };
/** The agent process's command line. */
const argvOf = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);

async function spawnFleet(): Promise<void> {
  const r = await gaxx(['spawn', '--provider', 'local', '--count', '1', '--fleet', FLEET, '--json']);
  expect(r.code, r.stderr).toBe(0);
  // The agent refuses work signed before its fleet's creation, which the fleet's state records.
  const argv = argvOf(agentRecord().pid);
  expect(argv[argv.indexOf('--fleet-since') + 1]).toBe(String(fleetSinceOf(fleetState())));
}

beforeAll(async () => {
  world = await localFleetHome('gxrespawn-', {}, LONG);
  ({ home, env } = world);
}, LONG);

afterAll(() => world?.close(), LONG);

/**
 * Runs `gaxx run --fleet rp` with a task that waits in its work dir for a file the test writes,
 * and returns its job as Redis held it while the task ran.
 */
async function runAndKeepJob(): Promise<TaskSpec> {
  // The task's work dir is its own (the rest of the machine is read-only to it): the test, root, opens the gate there.
  const run = spawnGaxx(['run', '--fleet', FLEET, '--', 'sh', '-c', 'i=0; while [ ! -e open ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; echo ran'], {
    home,
    env,
  });
  const runId = (/^gaxx: run (\S+)$/.exec(await run.line('stderr', (l) => /^gaxx: run \S+$/.test(l))) as RegExpExecArray)[1] as string;
  const queue = await TaskQueue.open(redisSettingsFromUrl(world.redis.url));
  try {
    let spec: TaskSpec | undefined;
    let workDir = '';
    // The job while its task runs: active in the run's queue, its work dir made on the agent.
    const found = await eventually(async () => {
      const [job] = await queue.queueFor(runId).getJobs(['active']);
      if (!job) return false;
      spec = parseTaskSpec(job.data);
      workDir = join(agentRecord().dir, 'data', 'tasks', execTaskId(runId, spec.taskId));
      return existsSync(workDir);
    }, 60_000);
    expect(found).toBe(true);
    writeFileSync(join(workDir, 'open'), '');
    const ended = await run.done;
    expect(ended.code, ended.stderr).toBe(0);
    expect(ended.stdout).toContain('ran');
    return spec as TaskSpec;
  } finally {
    await queue.close();
  }
}

describe('a fleet spawned again under its name', () => {
  it(
    "refuses the old fleet's signed job (SIGNED_BEFORE_FLEET), audited; a new run on it works",
    async () => {
      await spawnFleet();
      const first = fleetSinceOf(fleetState());
      const kept = await runAndKeepJob();
      expect(kept.signed?.signedAtUnixMs).toBeGreaterThanOrEqual(first);

      expect((await gaxx(['delete', FLEET, '--yes'])).code).toBe(0);
      await spawnFleet();
      const second = fleetSinceOf(fleetState());
      expect(second).toBeGreaterThan(kept.signed?.signedAtUnixMs as number);

      // The kept job, as the daemon dispatches it: its Exec request, the scheduler's certificate,
      // the agent's identity checked (the new agent's certificate names the same fleet and host).
      const rec = agentRecord();
      const execId = execTaskId(kept.runId, kept.taskId);
      const client = AgentClient.connect(
        { address: `${rec.address}:${rec.port}`, expect: { fleet: FLEET, host: HOST } },
        loadCertDir(join(home, 'state', 'scheduler', 'certs')),
      );
      const stop = new AbortController();
      const outcome = await (async (): Promise<string> => {
        try {
          for await (const ev of client.exec(buildRequest(kept, kept.stdin ? Buffer.from(kept.stdin, 'base64') : undefined, execId), { signal: stop.signal })) {
            if (ev.started) {
              // It ran again: end it (the assertion below fails).
              stop.abort();
              return 'started';
            }
          }
          return 'ended';
        } catch (e) {
          return isGaxxError(e) ? e.code : String(e);
        } finally {
          client.close();
        }
      })();
      expect(outcome).toBe('SIGNED_BEFORE_FLEET');
      expect(auditEvents(join(rec.dir, 'audit', 'audit.log')).filter((l) => l.event === 'exec_refused')).toMatchObject([
        { code: 'SIGNED_BEFORE_FLEET', identity: 'scheduler local', taskId: execId },
      ]);
      expect(existsSync(join(rec.dir, 'data', 'tasks', execId))).toBe(false);

      const fresh = await gaxx(['run', '--fleet', FLEET, '--json', '--', 'echo', 'new']);
      expect(fresh.code, fresh.stderr).toBe(0);
      expect(jsonLines(fresh.stdout).filter((l) => l.type === 'task')).toMatchObject([{ outcome: 'succeeded', stdout: 'new\n' }]);
    },
    LONG,
  );
});
