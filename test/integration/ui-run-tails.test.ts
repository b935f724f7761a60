// The dashboard's run tracker (scheduler/ui/runs.ts) keeps the output tail of tasks without a
// result yet for at most MAX_TAILS tasks per run, those that wrote last: output entries for
// ever more task ids (anyone who can write to Redis can add them) do not grow it without bound.
// A failed task whose tail was dropped shows none; a recent one shows its own. Entries that are
// not results are skipped. Real redis-server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEventsKey, taskResult } from '../../scheduler/queue/results.js';
import { RUN_FEED_KEY, runFeedKey } from '../../scheduler/queue/run-feed.js';
import { MAX_TAILS, RunTracker, TAIL_BYTES } from '../../scheduler/ui/runs.js';
import type { Redis } from 'ioredis';
import { redisAndConnection } from '../helpers/redis.js';

let conn: Redis;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => ({ conn, close } = await redisAndConnection()));

afterAll(() => close?.());

/** A failed task's result as a worker publishes it (whole: the tracker reads results back through their schema). */
const failed = (runId: string, taskId: string) => JSON.stringify(taskResult({ runId, taskId, host: 'h', outcome: 'failed', reason: '' }, { exitCode: 1 }));

describe('RunTracker output tails', () => {
  it('keeps the tails of the tasks that wrote last, at most MAX_TAILS per run', async () => {
    const runId = 'tails1';
    const n = MAX_TAILS + 10;
    await conn.hset(runFeedKey(runId), { total: String(n), createdAt: String(Date.now()), fleets: '', command: 'x' });
    await conn.zadd(RUN_FEED_KEY, Date.now(), runId);
    const key = runEventsKey(runId);
    const p = conn.pipeline();
    for (let i = 0; i < n; i++) {
      p.xadd(key, '*', 't', 'out', 'task', `t${i}`, 'd', `out-${i}`);
      // t0 writes again just before the tails are full: the first dropped are then t1..t10, not t0.
      if (i === MAX_TAILS - 1) p.xadd(key, '*', 't', 'out', 'task', 't0', 'd', '-again');
    }
    // Not results: skipped, and the tracker goes on.
    p.xadd(key, '*', 't', 'res', 'task', 'x', 'r', 'null');
    p.xadd(key, '*', 't', 'res', 'task', 'y', 'r', '{"outcome":7}');
    for (const t of ['t0', 't1', `t${n - 1}`]) p.xadd(key, '*', 't', 'res', 'task', t, 'r', failed(runId, t));
    await p.exec();

    const tracker = new RunTracker(conn);
    await tracker.tick();
    const view = tracker.all().find((v) => v.runId === runId);
    const tails = Object.fromEntries((view?.failures ?? []).map((f) => [f.taskId, f.tail]));
    expect(view?.done).toBe(3);
    expect(tails).toEqual({ t0: 'out-0-again', t1: '', [`t${n - 1}`]: `out-${n - 1}` });
  });

  it('keeps each tail in memory of its own: MAX_TAILS tasks of 64 KiB output hold about MAX_TAILS x TAIL_BYTES, not the replies they came in', async () => {
    const runId = 'tails2';
    await conn.hset(runFeedKey(runId), { total: String(MAX_TAILS + 1), createdAt: String(Date.now()), fleets: '', command: 'x' });
    await conn.zadd(RUN_FEED_KEY, Date.now(), runId);
    const key = runEventsKey(runId);
    const big = Buffer.alloc(64 * 1024, 'y');
    for (let at = 0; at < MAX_TAILS; at += 128) {
      const p = conn.pipeline();
      for (let i = at; i < at + 128; i++) p.xadd(key, '*', 't', 'live', 'task', `t${i}`, 'd', big);
      await p.exec();
    }
    const tracker = new RunTracker(conn);
    await tracker.tick();
    expect(tracker.all().find((v) => v.runId === runId)?.done).toBe(0);
    // What the tails hold: the whole memory behind each kept buffer (a view into a reply holds
    // the reply's). Read from the tracker's own state: nothing else shows it.
    type Internals = { runs: Map<string, { tails: Map<string, { data: Buffer }> }> };
    const tails = [...((tracker as unknown as Internals).runs.get(runId)?.tails.values() ?? [])];
    expect(tails).toHaveLength(MAX_TAILS);
    expect(tails.every((t) => t.data.length === TAIL_BYTES)).toBe(true);
    // 1,024 tails of 2 KiB are 2 MiB; as views they held the replies' 64 MiB.
    expect(tails.reduce((n, t) => n + t.data.buffer.byteLength, 0)).toBe(MAX_TAILS * TAIL_BYTES);
  });
});
