// Runs whose `gaxx run` is gone, with no scheduler daemon: `gaxx runs wait` serves and collects
// them, the run index shows how they ended, and exit codes follow the documented table. The
// built CLI, a real redis-server and real agents.
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { getRunRecord } from '../../scheduler/queue/run-index.js';
import { createRedis, redisSettingsFromUrl, waitReady, type RunRecord } from '../../scheduler/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { runGaxx, spawnGaxx, stopAllGaxx, type GaxxProcess } from '../helpers/cli.js';
import { homeAgentCerts, initHome } from '../helpers/cli-world.js';
import { taskGate } from '../helpers/gate.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

let home: string;
let agents: AgentProcess[];
let redis: TestRedis;
const dirs: string[] = [];

const env = (): Record<string, string> => ({ GAXX_REDIS_URL: redis.url });
const gaxx = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> => runGaxx(args, { home, env: env() });
const spawn = (args: string[]): GaxxProcess => spawnGaxx(args, { home, env: env() });

beforeAll(async () => {
  home = await initHome('gxro-');
  const certs = await homeAgentCerts(home);
  agents = await Promise.all([0, 1].map(() => startAgent({ certsDir: certs })));
  redis = await startRedis();
});

afterAll(async () => {
  await stopAllGaxx();
  await stopAllAgents();
  await redis?.destroy();
  for (const dir of [home, ...dirs]) rmSync(dir, { recursive: true, force: true });
});

async function record(runId: string): Promise<RunRecord | undefined> {
  const r = createRedis(redisSettingsFromUrl(redis.url), 'producer');
  try {
    await waitReady(r);
    return await getRunRecord(r, runId);
  } finally {
    r.disconnect();
  }
}

function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A dir the tasks mark their start in (one file each), and a count of the marks. */
function marks(): { dir: string; started(): number } {
  const dir = mkdtempSync(join(tmpdir(), 'gxro-marks-'));
  dirs.push(dir);
  chmodSync(dir, 0o777);
  return { dir, started: () => readdirSync(dir).filter((f) => f.startsWith('started.')).length };
}

/** `gaxx run` (one task per agent, or --tasks) whose tasks wait at `gate`, killed (-9) once `n` started. */
async function killedRun(extra: string[], script: string, m: ReturnType<typeof marks>, n: number): Promise<string> {
  const run = spawn([
    'run',
    ...extra,
    '--agent',
    agents.map((a) => a.address).join(','),
    '--',
    'sh',
    '-c',
    `mktemp ${m.dir}/started.XXXXXX >/dev/null; ${script}`,
  ]);
  await vi.waitFor(() => expect(m.started()).toBeGreaterThanOrEqual(n), { timeout: 60_000, interval: 100 });
  const runId = /gaxx: run (\S+)/.exec(run.stderr())?.[1] as string;
  expect(runId).toBeDefined();
  run.kill('SIGKILL');
  await run.done;
  return runId;
}

describe('a run whose gaxx run was killed, no daemon', () => {
  it('`runs wait` serves its remaining jobs and collects every result; the run index says done', async () => {
    const m = marks();
    const gate = taskGate();
    const runId = await killedRun([], `${gate.wait}; echo done`, m, 2);
    gate.open();
    // Documented: back once their 30 s lock expired, within seconds after.
    const r = await gaxx(['runs', 'wait', runId, '--json', '--wait-timeout', '55s']);
    gate.remove();
    expect(r.code, r.stderr).toBe(0);
    const lines = jsonLines(r.stdout);
    const tasks = lines.filter((x) => x.type === 'task');
    expect(tasks.map((t) => t.outcome)).toEqual(['succeeded', 'succeeded']);
    // Collected from the agents: not run again.
    for (const t of tasks) expect(t).toMatchObject({ mayHaveRepeated: false });
    expect(m.started()).toBe(2);
    expect(await record(runId)).toMatchObject({ state: 'done', counts: { succeeded: 2 } });
  }, 240_000);
});
