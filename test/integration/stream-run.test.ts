// streamRun: a task stream far larger than the window is enqueued in bounded batches; the
// queue never holds more than the window of the run, every task gets exactly one result.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRunRecord } from '../../scheduler/queue/run-index.js';
import { streamRun, type TaskInput, type TaskResult } from '../../scheduler/index.js';
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
});
