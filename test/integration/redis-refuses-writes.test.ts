// A Redis that stays connected but refuses writes (here OOM: a tiny `maxmemory` with
// `noeviction`, as MISCONF does after a failed AOF write on a full disk) ends a run's wait within
// its bound, REDIS_UNAVAILABLE with Redis's own reason, every task without a result `unknown`:
// whether the run's in-process worker meets the refusal publishing results, or only the waiter's
// write probe can notice (a daemon dispatches, nothing arrives). Once Redis takes writes again,
// `--resume` collects every task's real result.
import { readdirSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resumeRun, runAndWait, streamRun, type TaskInput } from '../../scheduler/index.js';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { markerDir } from '../helpers/agent.js';
import { taskGate } from '../helpers/gate.js';
import { eventually } from '../helpers/poll.js';
import { refuseWrites as refuseRedisWrites } from '../helpers/redis.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

let w: SchedulerWorld;
const dirs: string[] = [];
/** The bound on a refusal in these tests (the default is 60 s). */
const GONE_MS = 3000;

beforeAll(async () => {
  w = await startSchedulerWorld({ agents: 2, prefix: 'gxrw-' });
});

afterAll(async () => {
  await w?.redis.destroy().catch(() => undefined);
  await w?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Calls of EVALSHA (BullMQ's scripts: moveToActive and the rest) Redis has served so far. */
async function scriptCalls(): Promise<number> {
  const m = /^cmdstat_evalsha:calls=(\d+)/m.exec(await w.queue.redis.info('commandstats'));
  return Number(m?.[1] ?? 0);
}

/** Makes Redis refuse every write that may use memory (OOM), or take them again. */
const refuseWrites = (on: boolean): Promise<void> => refuseRedisWrites(w.queue.redis, on);

describe('Redis refusing writes mid-run', () => {
  it('in-process worker: the run ends within its bound with the reason, unknown for the rest; --resume then collects every result', async () => {
    const marks = markerDir('gxrw-marks');
    dirs.push(marks);
    const gate = taskGate();
    const agents = w.agents.map((a) => a.address);
    const started = (): number => readdirSync(marks).filter((f) => f.startsWith('started.')).length;
    async function* tasks(): AsyncGenerator<TaskInput> {
      for (let i = 1; i <= 4; i++)
        yield { taskId: String(i), agents, target: { any: true }, argv: ['sh', '-c', `mktemp ${marks}/started.XXXXXX >/dev/null; ${gate.wait}; echo t${i}`] };
    }
    const notes: string[] = [];
    try {
      const running = streamRun(tasks(), {
        settings: w.settings,
        signer: w.signer,
        connect: w.connect(),
        worker: 'always',
        window: 4,
        record: { argv: ['sh'], fleet: '', agents: 2, mode: 'tasks' },
        redisGoneMs: GONE_MS,
        onRedis: (down, _ms, refused) => notes.push(`${down}:${refused ?? ''}`),
      });
      expect(await eventually(() => started() === 4, 60_000)).toBe(true);
      await refuseWrites(true);
      // The tasks end now; their results cannot be published.
      gate.open();
      const t0 = Date.now();
      const out = await running;
      // Bounded: the refusal's bound and a few seconds, never the 60 s default.
      expect(Date.now() - t0).toBeLessThan(GONE_MS + 15_000);
      expect(out.ended).toMatchObject({ code: 'REDIS_UNAVAILABLE', refused: expect.stringMatching(/^OOM/) });
      expect(out.counts).toEqual({ unknown: 4 });
      expect(notes.some((n) => /^true:OOM/.test(n))).toBe(true);
      // The probe leaves nothing behind.
      expect(await w.queue.redis.exists(`{gaxx}:run:${out.runId}:probe`)).toBe(0);

      await refuseWrites(false);
      const seen: string[] = [];
      const resumed = await resumeRun(out.runId, { settings: w.settings, signer: w.signer, connect: w.connect(), onResult: (r) => seen.push(r.outcome) });
      expect(resumed.ended).toBeUndefined();
      expect(seen.sort()).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
      expect([...resumed.output.values()].map((o) => Buffer.concat(o.map((c) => c.data)).toString()).sort()).toEqual(['t1\n', 't2\n', 't3\n', 't4\n']);
    } finally {
      await refuseWrites(false);
      gate.open();
      gate.remove();
    }
  }, 180_000);

  it('dispatched elsewhere (nothing arrives): the wait notices through its write probe and ends within its bound', async () => {
    const agents = w.agents.map((a) => a.address);
    const results: Array<{ outcome: string; reason?: string }> = [];
    try {
      const out = await runAndWait(
        { runId: 'refusedprobe1', tasks: [{ taskId: '1', agents, target: { any: true }, argv: ['true'] }] },
        {
          settings: w.settings,
          signer: w.signer,
          // As with a daemon heartbeating: this process never works on the run.
          worker: 'never',
          redisGoneMs: GONE_MS,
          onStart: () => void refuseWrites(true),
          onResult: (r) => results.push(r),
        },
      );
      expect(out.ended).toMatchObject({ code: 'REDIS_UNAVAILABLE', refused: expect.stringMatching(/^OOM/) });
      expect(out.ended?.message).toMatch(/refuses writes/);
      expect(results).toEqual([expect.objectContaining({ outcome: 'unknown', reason: 'REDIS_UNAVAILABLE' })]);
    } finally {
      await refuseWrites(false);
    }
  }, 60_000);

  it('a worker that finds a job waiting while writes are refused backs off instead of fetching in a loop, and takes it once they are taken', async () => {
    const agent = w.agents[0]?.address as string;
    const enq = await w.queue.enqueueRun(
      { runId: 'refusedfetch1', tasks: [{ taskId: '1', agents: [agent], target: { host: agent }, argv: ['true'] }] },
      w.signer,
    );
    let worker: SchedulerWorker | undefined;
    try {
      await refuseWrites(true);
      const before = await scriptCalls();
      worker = SchedulerWorker.start({ settings: w.settings, connect: w.connect(), runId: 'refusedfetch1' });
      // The worker meets the refusal (its moveToActive is refused)...
      expect(await eventually(async () => (await scriptCalls()) > before + 1, 30_000, 20)).toBe(true);
      // ...and then waits between tries: its next two script calls come at least one pause apart
      // (200 ms or more by then: 100 ms after the first refusal, doubling), never less on a slower
      // machine. BullMQ alone made them within a millisecond: about 6,500 a second, for as long as
      // the refusal lasted.
      const from = await scriptCalls();
      const t0 = Date.now();
      expect(await eventually(async () => (await scriptCalls()) >= from + 2, 60_000, 20)).toBe(true);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(200);

      await refuseWrites(false);
      const res = await waitForRun(w.queue.redis, 'refusedfetch1', enq.taskIds, { timeoutMs: 60_000 });
      expect([...res.results.values()].map((r) => r.outcome)).toEqual(['succeeded']);
    } finally {
      await refuseWrites(false);
      await worker?.drain(1000);
    }
  }, 120_000);
});
