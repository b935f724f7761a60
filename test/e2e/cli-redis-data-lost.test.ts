// A Redis that loses its data while a run is waited for (FLUSHALL here; a restart without
// persistence is the same to gaxx): the run's jobs, registry entry and results are gone, its
// workers leave the jobs whose locks went with them, and no result can come back. `gaxx run`
// (one task per host, and a task list) and `gaxx runs wait` end on their own with every task
// without a result `unknown` (REDIS_DATA_LOST), exit 12, saying nothing is left to resume,
// instead of waiting for ever. The built CLI, real agents, a real redis-server.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import type { Cluster, Redis } from 'ioredis';
import { jsonLines, type GaxxProcess } from '../helpers/cli.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';
import { taskGate } from '../helpers/gate.js';
import { eventually } from '../helpers/poll.js';
import { markerDir } from '../helpers/task-writable.js';
import { withRedisAt } from '../helpers/redis.js';

let w: CliWorld;

// A world per test: a flush takes everything gaxx keeps in Redis (the fleet's registration too).
beforeEach(async () => {
  w = await cliWorld(2);
});

afterEach(async () => {
  await w?.close();
});

const withRedis = <T>(op: (redis: Redis | Cluster) => Promise<T>): Promise<T> => withRedisAt(w.redis.url, op);

const flushRedis = (): Promise<unknown> => withRedis((redis) => redis.flushall());

/** How many readers follow `runId` now (each keeps a key of its own while it does: run-presence.ts). */
const followers = (runId: string): Promise<number> =>
  withRedis(async (redis) => {
    const keys = await redis.keys('{gaxx}:follow:*');
    const runs = keys.length > 0 ? await redis.mget(...keys) : [];
    return runs.filter((r) => r === runId).length;
  });

/** Runs `args` (a gaxx run whose tasks mark their start, then wait at a gate) and flushes Redis once `started` of them began; returns its exit. */
async function lostRun(args: (marks: string, wait: string) => string[], started: number, alsoWait = false) {
  const gate = taskGate();
  const marks = markerDir('gxdl');
  const run = w.spawnGaxx(args(marks, gate.wait));
  let waiter: GaxxProcess | undefined;
  try {
    expect(await eventually(() => readdirSync(marks).length >= started, 60_000), run.stderr()).toBe(true);
    if (alsoWait) {
      const runId = (JSON.parse(await run.line('stdout', (l) => l.includes('"type":"run"'))) as { runId: string }).runId;
      waiter = w.spawnGaxx(['runs', 'wait', runId, '--json']);
      // It found the run (its records are there), and follows it from now on.
      await waiter.line('stdout', (l) => l.includes('"type":"run"'));
    }
    await flushRedis();
    const [ran, waited] = await Promise.all([run.done, waiter?.done]);
    return { ran, stdout: run.stdout(), stderr: run.stderr(), waited, waiterOut: waiter?.stdout() ?? '', waiterErr: waiter?.stderr() ?? '' };
  } finally {
    gate.open();
    run.kill('SIGKILL');
    waiter?.kill('SIGKILL');
  }
}

const SAYS = 'records are gone from Redis';

/** Starts `gaxx run TARGET --tasks - --json` whose tasks mark their start and wait at a gate, writes records a and b, and waits until both started. */
async function streamedList(target: string[]): Promise<{ run: GaxxProcess; gate: ReturnType<typeof taskGate>; marks: string }> {
  const gate = taskGate();
  const marks = markerDir('gxdl');
  const run = w.spawnGaxx(['run', ...target, '--tasks', '-', '--json', '--', 'sh', '-c', `touch "${marks}/$1"; ${gate.wait}; echo "$1"`, '_', '{}']);
  run.child.stdin?.write('a\nb\n');
  if (!(await eventually(() => readdirSync(marks).length >= 2, 60_000))) {
    gate.open();
    run.kill('SIGKILL');
    throw new Error(`records a and b did not start: ${run.stderr()}`);
  }
  return { run, gate, marks };
}

/** Both of records a and b (1 and 2) of `lines` are unknown REDIS_DATA_LOST: their results cannot come back. */
function expectLost(lines: Record<string, unknown>[]): void {
  const tasks = lines.filter((l) => l.type === 'task' && (l.taskId === '1' || l.taskId === '2'));
  expect(tasks).toEqual([
    expect.objectContaining({ outcome: 'unknown', reason: 'REDIS_DATA_LOST' }),
    expect.objectContaining({ outcome: 'unknown', reason: 'REDIS_DATA_LOST' }),
  ]);
  expect(lines.at(-1)).toMatchObject({ type: 'summary', state: 'lost' });
}

describe('Redis loses its data while a run is waited for', () => {
  it('gaxx run (one task per host): every task unknown REDIS_DATA_LOST, exit 12, nothing said to resume', { timeout: 120_000 }, async () => {
    const r = await lostRun(
      (marks, wait) => ['run', '--fleet', w.fleet, '--json', '--', 'sh', '-c', `mktemp "${marks}/s.XXXXXX" >/dev/null; ${wait}; echo late`],
      2,
    );
    expect(r.ran.code, r.stderr).toBe(exitCodeFor('REDIS_DATA_LOST'));
    expect(exitCodeFor('REDIS_DATA_LOST')).toBe(12);
    const results = jsonLines(r.stdout).filter((l) => l.type === 'task');
    expect(results).toHaveLength(2);
    for (const res of results) expect(res).toMatchObject({ outcome: 'unknown', reason: 'REDIS_DATA_LOST' });
    // Nothing of the run is left queued: its state says so (not `running`, which could be waited for again).
    expect(jsonLines(r.stdout).at(-1)).toMatchObject({ type: 'summary', total: 2, unknown: 2, state: 'lost' });
    expect(r.stderr).toContain(SAYS);
    expect(r.stderr).toContain('nothing of it is left to resume or collect');
    expect(r.stderr).not.toContain('--resume');
  });

  it('gaxx run --tasks, followed by gaxx runs wait: both end, every task unknown REDIS_DATA_LOST, exit 12', { timeout: 120_000 }, async () => {
    const file = join(w.scratch('gxdl-'), 'list.txt');
    writeFileSync(file, 'a\nb\nc\n');
    const r = await lostRun(
      (marks, wait) => ['run', '--fleet', w.fleet, '--tasks', file, '--json', '--', 'sh', '-c', `touch "${marks}/$1"; ${wait}; echo "$1"`, '_', '{}'],
      // Two agents: the third record may wait for a slot (then it never starts: its job is lost too).
      2,
      true,
    );
    expect(r.ran.code, r.stderr).toBe(12);
    const results = jsonLines(r.stdout).filter((l) => l.type === 'task');
    expect(results.map((l) => l.outcome)).toEqual(['unknown', 'unknown', 'unknown']);
    for (const res of results) expect(res.reason).toBe('REDIS_DATA_LOST');
    expect(r.stderr).toContain(SAYS);
    expect(r.waited?.code, r.waiterErr).toBe(12);
    expect(r.waiterErr).toContain(SAYS);
    const waited = jsonLines(r.waiterOut).filter((l) => l.type === 'task');
    expect(waited).toHaveLength(3);
    for (const res of waited) expect(res).toMatchObject({ outcome: 'unknown', reason: 'REDIS_DATA_LOST' });
    expect(jsonLines(r.stdout).at(-1)).toMatchObject({ type: 'summary', state: 'lost' });
    expect(jsonLines(r.waiterOut).at(-1)).toMatchObject({ type: 'summary', total: 3, unknown: 3, state: 'lost' });
  });

  it(
    "a task list's next batch after the loss, its fleet's registration gone with the rest: REDIS_DATA_LOST, not an unknown fleet",
    { timeout: 120_000 },
    async () => {
      const { run, gate } = await streamedList(['--fleet', w.fleet]);
      try {
        await flushRedis();
        run.child.stdin?.end('c\n');
        const ran = await run.done;
        expect(ran.code, run.stderr()).toBe(12);
        expect(run.stderr()).toContain(SAYS);
        expectLost(jsonLines(run.stdout()));
      } finally {
        gate.open();
        run.kill('SIGKILL');
      }
    },
  );

  it('gaxx runs wait of a task list whose gaxx run enqueues more after the loss (registering the run again) ends too', { timeout: 120_000 }, async () => {
    // Named by --agent: the flush takes the fleet's registration too, which a later batch would need.
    const { run, gate, marks } = await streamedList(['--agent', w.agents.map((a) => a.address).join(',')]);
    let waiter: GaxxProcess | undefined;
    try {
      const runId = (JSON.parse(await run.line('stdout', (l) => l.includes('"type":"run"'))) as { runId: string }).runId;
      expect(await eventually(async () => (await followers(runId)) === 1, 60_000)).toBe(true);
      waiter = w.spawnGaxx(['runs', 'wait', runId, '--json']);
      // It follows the run (a loss before its first look would not be told from a new run).
      expect(await eventually(async () => (await followers(runId)) === 2, 60_000), waiter.stderr()).toBe(true);
      // The waiter looks again only once the run is registered anew: its registry entry and task
      // list are back, with c and d only; a and b are gone with their jobs.
      waiter.kill('SIGSTOP');
      await flushRedis();
      run.child.stdin?.end('c\nd\n');
      expect(await eventually(() => readdirSync(marks).length >= 3, 60_000), run.stderr()).toBe(true);
      waiter.kill('SIGCONT');
      const [ran, waited] = await Promise.all([run.done, waiter.done]);
      expect(ran.code, run.stderr()).toBe(12);
      expect(waited.code, waiter.stderr()).toBe(12);
      expect(waiter.stderr()).toContain(SAYS);
      expectLost(jsonLines(waiter.stdout()));
    } finally {
      gate.open();
      run.kill('SIGKILL');
      waiter?.kill('SIGCONT');
      waiter?.kill('SIGKILL');
    }
  });

  it('gaxx runs cancel --wait whose run Redis loses meanwhile ends exit 12, the run lost', { timeout: 120_000 }, async () => {
    const { run, gate } = await streamedList(['--fleet', w.fleet]);
    let canceller: GaxxProcess | undefined;
    try {
      const runId = (JSON.parse(await run.line('stdout', (l) => l.includes('"type":"run"'))) as { runId: string }).runId;
      expect(await eventually(async () => (await followers(runId)) === 1, 60_000)).toBe(true);
      // Its gaxx run holds the running tasks' jobs and stops them no more: the cancel's wait waits.
      run.kill('SIGSTOP');
      canceller = w.spawnGaxx(['runs', 'cancel', runId, '--wait', '--json']);
      expect(await eventually(async () => (await followers(runId)) === 2, 60_000), canceller.stderr()).toBe(true);
      await flushRedis();
      const ended = await canceller.done;
      expect(ended.code, canceller.stderr()).toBe(12);
      const out = JSON.parse(canceller.stdout()) as { ended?: { state: string; waitEnded?: string } };
      expect(out.ended).toMatchObject({ state: 'lost', waitEnded: 'REDIS_DATA_LOST' });
    } finally {
      gate.open();
      run.kill('SIGCONT');
      run.kill('SIGKILL');
      canceller?.kill('SIGKILL');
    }
  });
});
