// streamRun: a task stream far larger than the window is enqueued in bounded batches; the
// queue never holds more than the window of the run, every task gets exactly one result; an input
// that fails to be read ends the run failed, as everyone who follows it says.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GaxxError } from '../../proto/index.js';
import { attachRun } from '../../scheduler/queue/run-control.js';
import { createRunRecord, getRunRecord } from '../../scheduler/queue/run-index.js';
import { loadRunMeta } from '../../scheduler/queue/runs.js';
import { resumeRun, streamRun, type TaskInput, type TaskResult } from '../../scheduler/index.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

let w: SchedulerWorld;

beforeAll(async () => {
  w = await startSchedulerWorld({ agents: 2, prefix: 'gxsr-' });
});

afterAll(async () => {
  await w?.close();
});

describe('streamRun', () => {
  it('keeps at most `window` tasks queued or running while pulling a long input; one result per task', { timeout: 600_000 }, async () => {
    const N = 600;
    const WINDOW = 20;
    let pulled = 0;
    let finished = 0;
    let maxAhead = 0;
    let maxQueued = 0;
    const agents = w.agents.map((a) => a.address);
    async function* tasks(): AsyncGenerator<TaskInput> {
      for (let i = 1; i <= N; i++) {
        pulled++;
        maxAhead = Math.max(maxAhead, pulled - finished);
        yield { taskId: String(i), agents, target: { any: true }, argv: ['echo', `t${i}`] };
      }
    }
    const seen = new Map<string, TaskResult>();
    // One sample in flight at a time, awaited before the world closes (no read outlives the test).
    let sampling: Promise<void> | undefined;
    const sample = setInterval(() => {
      sampling ??= w.queue
        .depth()
        .then((d) => void (maxQueued = Math.max(maxQueued, (d.waiting ?? 0) + (d.active ?? 0) + (d.delayed ?? 0) + (d.prioritized ?? 0))))
        .finally(() => (sampling = undefined));
    }, 20);
    try {
      const res = await streamRun(tasks(), {
        settings: w.settings,
        signer: w.signer,
        connect: w.connect(),
        window: WINDOW,
        record: { argv: ['echo'], fleet: '', agents: 2, mode: 'tasks' },
        onResult: (r, output) => {
          finished++;
          expect(seen.has(r.taskId)).toBe(false);
          seen.set(r.taskId, r);
          expect(Buffer.concat(output.map((c) => c.data)).toString()).toBe(`t${r.taskId}\n`);
        },
      });
      expect(res).toMatchObject({ total: N, counts: { succeeded: N }, cancelled: false });
      expect(seen.size).toBe(N);
      // Pulled ahead of results by at most the window plus the one item a batch may hold back.
      expect(maxAhead).toBeLessThanOrEqual(WINDOW + 1);
      // BullMQ's own counts also hold jobs whose result is out but which are not yet marked
      // completed (the slot is free once the result is published): bounded, never the input.
      expect(maxQueued).toBeLessThanOrEqual(2 * WINDOW);
      expect(await getRunRecord(w.queue.redis, res.runId)).toMatchObject({ state: 'done', total: N, enqueued: N, counts: { succeeded: N } });
    } finally {
      clearInterval(sample);
      await sampling;
    }
  });

  it('an input that fails to be read: the run stops there and fails with that reason; attach and --resume keep it failed', async () => {
    const agents = w.agents.map((a) => a.address);
    const failure = { code: 'FILE_ACCESS', message: 'cannot read stdin: input/output error on the device stdin reads from (EIO)' } as const;
    let bothDone = (): void => undefined;
    const done = new Promise<void>((r) => (bothDone = r));
    let results = 0;
    async function* tasks(): AsyncGenerator<TaskInput> {
      for (const n of [1, 2]) yield { taskId: String(n), agents, target: { any: true }, argv: ['echo', `t${n}`] };
      // The read after them fails, once both have run.
      await done;
      throw new GaxxError(failure.code, failure.message);
    }
    const res = await streamRun(tasks(), {
      settings: w.settings,
      signer: w.signer,
      connect: w.connect(),
      window: 10,
      record: { argv: ['echo'], fleet: '', agents: 2, mode: 'tasks' },
      onResult: () => void (++results === 2 && bothDone()),
    });
    // Returned, not thrown: the caller reports every task and the failure.
    expect(res).toMatchObject({ total: 2, counts: { succeeded: 2 }, cancelled: false, inputRead: false, failure });
    expect(res).not.toHaveProperty('ended');
    const rec = await getRunRecord(w.queue.redis, res.runId);
    expect(rec).toMatchObject({ state: 'failed', enqueued: 2, total: null, counts: { succeeded: 2 }, failure });
    expect(rec?.finishedAt).not.toBeNull();
    // Cancelled for its failure (its cancel flag is set), it stays failed whoever follows it.
    const attached = await attachRun(res.runId, { settings: w.settings, connect: w.connect() });
    expect(attached).toMatchObject({ state: 'failed', counts: { succeeded: 2 }, record: { state: 'failed', failure } });
    const resumed = await resumeRun(res.runId, { settings: w.settings, signer: w.signer, connect: w.connect() });
    expect(resumed).toMatchObject({ failed: true, failure, enqueued: 2, cancelled: false });
    expect(await getRunRecord(w.queue.redis, res.runId)).toMatchObject({ state: 'failed', failure, finishedAt: rec?.finishedAt });

    // One whose first read fails: nothing enqueued, and --resume still knows it (failed, not unknown).
    // eslint-disable-next-line require-yield
    async function* none(): AsyncGenerator<TaskInput> {
      throw new GaxxError(failure.code, failure.message);
    }
    const empty = await streamRun(none(), {
      settings: w.settings,
      signer: w.signer,
      connect: w.connect(),
      window: 10,
      record: { argv: ['echo'], fleet: '', agents: 2, mode: 'tasks' },
    });
    expect(empty).toMatchObject({ total: 0, inputRead: false, failure });
    expect(await resumeRun(empty.runId, { settings: w.settings, signer: w.signer, connect: w.connect() })).toMatchObject({
      failed: true,
      failure,
      enqueued: 0,
    });
    expect(await attachRun(empty.runId, { settings: w.settings, connect: w.connect() })).toMatchObject({ state: 'failed', record: { failure } });
  });

  it('a run enqueued in batches is resumed whole: its meta holds every batch, --resume waits for every task and records the end', async () => {
    const agents = w.agents.map((a) => a.address);
    const runId = 'rbatches1';
    const task = (n: number): TaskInput => ({ taskId: String(n), agents, target: { any: true }, argv: ['echo', `t${n}`] });
    // As streamRun enqueues a task list: one addBulk per batch, a record whose submitter is gone
    // before its input ended (no total).
    await createRunRecord(w.queue.redis, {
      runId,
      argv: ['echo'],
      fleet: '',
      agents: 2,
      mode: 'tasks',
      startedAt: Date.now() - 60_000,
      total: null,
      enqueued: 5,
    });
    await w.queue.redis.hset(`{gaxx}:run:${runId}:info`, 'seen', String(Date.now() - 60_000));
    await w.queue.enqueueRun({ runId, tasks: [1, 2, 3].map(task) }, w.signer);
    await w.queue.enqueueRun({ runId, tasks: [4, 5].map(task) }, w.signer);
    // Enqueueing a batch again (a retry whose reply was lost) adds nothing.
    await w.queue.enqueueRun({ runId, tasks: [4, 5].map(task) }, w.signer);
    expect((await loadRunMeta(w.queue.redis, runId))?.taskIds).toEqual(['1', '2', '3', '4', '5']);
    const got: string[] = [];
    const out = await resumeRun(runId, { settings: w.settings, signer: w.signer, connect: w.connect(), worker: 'always', onResult: (r) => got.push(r.taskId) });
    expect(out.ended).toBeUndefined();
    expect(got.sort()).toEqual(['1', '2', '3', '4', '5']);
    expect([...out.results.values()].map((r) => r.outcome)).toEqual(Array(5).fill('succeeded'));
    // Its input was never read to its end: interrupted, not done, with the counts of every task.
    expect(await getRunRecord(w.queue.redis, runId)).toMatchObject({ state: 'interrupted', counts: { succeeded: 5 } });
  });
});
