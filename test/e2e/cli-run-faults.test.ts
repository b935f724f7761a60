// The built CLI's `gaxx run` under faults, with real processes: Redis killed (-9, not restarted)
// during a run ends it at --wait-timeout or at one Ctrl-C, saying so while it lasts, with a
// result for every task; a `--tasks` run whose Redis is killed ends on its own with
// REDIS_UNAVAILABLE (exit 12) and every enqueued task reported unknown; a `gaxx run` killed (-9) mid-run leaves its jobs to itself: an
// unrelated run does not execute them, `gaxx run --resume ID` finishes them, each once.
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { createRedis, redisSettingsFromUrl } from '../../scheduler/index.js';
import { markerDir, markerFile, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { type GaxxProcess, jsonLines, spawnGaxx, stopAllGaxx } from '../helpers/cli.js';
import { homeAgentCerts, initHome } from '../helpers/cli-world.js';
import { taskGate } from '../helpers/gate.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

let home: string;
let certs: string;
let agents: AgentProcess[];

/** `gaxx ARGS` against `redisUrl`, as a child we can signal. */
const gaxx = (args: string[], redisUrl: string): GaxxProcess => spawnGaxx(args, { home, env: { GAXX_REDIS_URL: redisUrl } });

beforeAll(async () => {
  home = await initHome('gxrf-');
  certs = await homeAgentCerts(home);
  agents = await Promise.all([0, 1].map(() => startAgent({ certsDir: certs })));
});

/** Dirs the tasks mark their start in (world-writable, so outside the 0700 home): removed at the end. */
const markDirs: string[] = [];

afterAll(async () => {
  await stopAllGaxx();
  await stopAllAgents();
  for (const dir of [home, ...markDirs]) rmSync(dir, { recursive: true, force: true });
});

describe('gaxx run when Redis dies and does not come back', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.destroy();
  });

  /**
   * Starts `gaxx run` (one task per agent, or one per line of `records` with --tasks), waits until
   * two tasks have started, kills Redis and waits until the run says Redis is unreachable.
   */
  async function runThenKillRedis(extra: string[], records?: string): Promise<GaxxProcess> {
    await redis.restart().catch(() => undefined);
    // This run's tasks say they started in a file of their own (other runs' tasks may still run),
    // one file per task (a sandboxed task is pid 2 in its own namespace, so $$ names nothing).
    const marks = markerDir('gxrf-marks');
    markDirs.push(marks);
    const list = join(marks, 'tasks.txt');
    if (records !== undefined) writeFileSync(list, records);
    const run = gaxx(
      [
        'run',
        '--json',
        ...extra,
        ...(records !== undefined ? ['--tasks', list] : []),
        '--agent',
        agents.map((a) => a.address).join(','),
        '--',
        'sh',
        '-c',
        `mktemp ${marks}/started.XXXXXX >/dev/null; exec sleep 20`,
      ],
      redis.url,
    );
    let exited = false;
    void run.done.then(() => (exited = true));
    await vi.waitFor(
      () => {
        if (exited) throw new Error(`gaxx run ended early: ${run.stderr()} ${run.stdout()}`);
        const started = readdirSync(marks).filter((f) => f.startsWith('started.')).length;
        // One task per agent: exactly the two; a task list: at least two of its four.
        if (records === undefined) expect(started).toBe(2);
        else expect(started).toBeGreaterThanOrEqual(2);
      },
      { timeout: 90_000, interval: 100 },
    );
    await redis.kill9();
    await vi.waitFor(() => expect(run.stderr()).toMatch(/Redis unreachable for \d+s/), { timeout: 60_000, interval: 100 });
    return run;
  }

  it('--wait-timeout ends the run: exit 13, every task reported unknown', async () => {
    const run = await runThenKillRedis(['--wait-timeout', '12s']);
    const r = await run.done;
    expect(r.code, r.stderr).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
    const lines = jsonLines(r.stdout);
    const first = lines[0];
    const results = lines.filter((x) => x.type === 'task');
    expect(first).toMatchObject({ type: 'run', runId: expect.any(String) });
    expect(results).toHaveLength(2);
    for (const x of results) expect(x).toMatchObject({ runId: first?.runId, outcome: 'unknown', reason: 'DEADLINE_EXCEEDED' });
  }, 180_000);

  it('a --tasks run: ends by itself with REDIS_UNAVAILABLE (exit 12), every task reported unknown', async () => {
    // No {}: each record is appended as the last argument ($0 of the script).
    const run = await runThenKillRedis([], 'a\nb\nc\nd\n');
    // Bounded: the test's own timeout is the bound; nothing here ends the run for it.
    const r = await run.done;
    expect(r.code, r.stderr).toBe(exitCodeFor('REDIS_UNAVAILABLE'));
    const lines = jsonLines(r.stdout);
    expect(lines[0]).toMatchObject({ type: 'run', runId: expect.any(String) });
    expect(lines.at(-1)).toMatchObject({ type: 'summary' });
    const results = lines.filter((x) => x.type === 'task');
    expect(results).toHaveLength(4);
    for (const x of results) expect(x).toMatchObject({ runId: lines[0]?.runId, outcome: 'unknown', reason: 'REDIS_UNAVAILABLE' });
  }, 240_000);

  it('one Ctrl-C ends the run: exit 130, every task reported', async () => {
    const run = await runThenKillRedis([]);
    run.kill('SIGINT');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(exitCodeFor('CANCELLED'));
    const results = jsonLines(r.stdout).filter((x) => x.type === 'task');
    expect(results).toHaveLength(2);
    for (const x of results) expect(x).toMatchObject({ outcome: 'unknown', reason: 'CANCELLED' });
  }, 180_000);
});

describe('gaxx run killed (-9) mid-run', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.destroy();
  });

  it('leaves its jobs to itself: an unrelated run does not take them, --resume finishes them once', async () => {
    const f = markerFile('gxrf-shared', 'log');
    const lines = (): string[] => readFileSync(f, 'utf8').split('\n').filter(Boolean);
    // The tasks end only once their CLI is gone.
    const gate = taskGate();
    const first = gaxx(['run', '--agent', agents.map((a) => a.address).join(','), '--', 'sh', '-c', `echo first >> ${f}; ${gate.wait}`], redis.url);
    await vi.waitFor(() => expect(lines()).toEqual(['first', 'first']), { timeout: 60_000, interval: 50 });
    const runId = /gaxx: run (\S+)/.exec(first.stderr())?.[1] ?? '';
    expect(runId).not.toBe('');
    first.kill('SIGKILL');
    await first.done;
    gate.open();
    // Wait until the dead worker's locks are gone: from now on any worker could take those jobs.
    const admin = createRedis(redisSettingsFromUrl(redis.url), 'worker');
    const queue = new Queue(`run.${runId}`, { connection: admin, prefix: '{gaxx}' });
    try {
      await vi.waitFor(async () => expect(await admin.keys(`{gaxx}:run.${runId}:*:lock`)).toEqual([]), { timeout: 90_000, interval: 250 });
      const other = await gaxx(['run', '--agent', (agents[0] as AgentProcess).address, '--', 'sh', '-c', `echo other >> ${f}`], redis.url).done;
      expect(other.code, other.stderr).toBe(0);
      // The unrelated run took nothing of the killed one: its two jobs are still there, unfinished.
      expect(await queue.getJobCounts('completed')).toEqual({ completed: 0 });
      expect(Object.values(await queue.getJobCounts('waiting', 'active', 'delayed')).reduce((x, y) => x + y, 0)).toBe(2);
      const resumed = await gaxx(['run', '--json', '--timings', '--resume', runId], redis.url).done;
      expect(resumed.code, resumed.stderr).toBe(0);
      // --timings: this process served the resumed run, and its summary says when.
      expect(jsonLines(resumed.stdout).at(-1)).toMatchObject({ type: 'summary', timings: { worker: 'this process', redisMs: expect.any(Number) as number } });
      const results = jsonLines(resumed.stdout).filter((x) => x.type === 'task');
      expect(results.map((x) => x.outcome)).toEqual(['succeeded', 'succeeded']);
      // Collected from the agents' registries: not run again.
      for (const x of results) expect(x).toMatchObject({ replayed: true, mayHaveRepeated: false });
      expect(lines().sort()).toEqual(['first', 'first', 'other']);
      // The run is finished now: resuming it again, or waiting on it, prints its header (its
      // command as given), both results and the summary, and exits 0. The worker each starts
      // for it is closed at once, while its connection is still being set up: that once ended
      // the process with an unhandled Redis error and exit 1.
      const argv = ['sh', '-c', `echo first >> ${f}; ${gate.wait}`];
      for (const args of [
        ['run', '--json', '--resume', runId],
        ['runs', 'wait', runId, '--json'],
        ['runs', 'wait', runId],
      ]) {
        const again = await gaxx(args, redis.url).done;
        expect(again.code, `${args.join(' ')}: ${again.stderr}`).toBe(0);
        expect(again.stderr).not.toMatch(/Connection is closed|Unhandled/);
        if (args.includes('--json')) {
          const got = jsonLines(again.stdout);
          expect(got[0]).toMatchObject({ type: 'run', runId, argv });
          expect(got.filter((x) => x.type === 'task').map((x) => x.outcome)).toEqual(['succeeded', 'succeeded']);
          expect(got.at(-1)).toMatchObject({ type: 'summary', total: 2, succeeded: 2 });
        } else {
          expect(again.stderr).toContain(`gaxx: run ${runId}: 2 tasks: 2 succeeded`);
          // As its own gaxx run prints a run of one task per host: a result line per host.
          if (args[0] === 'runs') for (const a of agents) expect(again.stdout).toContain(`== ${a.address}: succeeded (exit 0`);
        }
      }
      // An unknown run: the not-found error alone, no run header before it.
      const unknown = await gaxx(['run', '--resume', 'nosuch'], redis.url).done;
      expect(unknown.code).toBe(exitCodeFor('NOT_FOUND'));
      expect(unknown.stderr).not.toMatch(/^gaxx: run nosuch$/m);
      gate.remove();
    } finally {
      await queue.close();
      admin.disconnect();
    }
  }, 240_000);
});
