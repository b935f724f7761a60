// A Redis that stops answering while its connections stay up (redis-server stopped by SIGSTOP,
// as a paused machine or a partition that sends no reset leaves it): a run's wait hears it is
// unreachable and ends at its bound, REDIS_UNAVAILABLE, as for a Redis that went away; its
// connection's events never say so; a task list cancelled meanwhile ends cancelled rather than
// wait for its cancel's writes. Real redis-server and agent.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followRun } from '../../scheduler/queue/follow.js';
import { publishResult, taskResult } from '../../scheduler/queue/results.js';
import { streamRun, type TaskInput, type TaskResult } from '../../scheduler/index.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';
import { redisAndConnection, type TestRedis } from '../helpers/redis.js';

let r: Redis;
let server: TestRedis;
let close: (() => Promise<void>) | undefined;
let stopped: number | undefined;

beforeAll(async () => ({ conn: r, redis: server, close } = await redisAndConnection('worker')));
/** Publishes a result of `runId`; resolves once its follower read it (its reader is ready, its loop runs). */
function firstResult(runId: string): { onResult: () => void; read: Promise<void> } {
  let onResult = (): void => undefined;
  const read = new Promise<void>((resolve) => (onResult = resolve));
  void publishResult(r, taskResult({ runId, taskId: '1', host: '127.0.0.1:1', outcome: 'succeeded', reason: '' }, { exitCode: 0, attempts: 1 }), []);
  return { onResult, read };
}

afterAll(async () => {
  if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
  await close?.();
});

describe('a Redis that does not answer', () => {
  it('is reported unreachable while it lasts and ends a run wait at the bound', { timeout: 60_000 }, async () => {
    const notes: Array<{ down: boolean; forMs: number }> = [];
    let heard = (): void => undefined;
    const down = new Promise<void>((resolve) => (heard = resolve));
    const first = firstResult('stall1');
    const following = followRun(r, 'stall1', {
      onResult: first.onResult,
      done: () => false,
      pollMs: 50,
      redisGoneMs: 6000,
      onRedis: (d, forMs, refused) => {
        if (refused !== undefined) return;
        notes.push({ down: d, forMs });
        if (d) heard();
      },
    });
    following.catch(() => undefined);
    // The follower's first read went through: Redis stops answering under it.
    await first.read;
    const pid = server.pid() as number;
    process.kill((stopped = pid), 'SIGSTOP');
    try {
      await down;
      await expect(following).rejects.toMatchObject({
        code: 'REDIS_UNAVAILABLE',
        message: expect.stringMatching(/^redis unreachable for \d+ s while following run stall1/),
      });
    } finally {
      process.kill(pid, 'SIGCONT');
      stopped = undefined;
    }
    expect(notes[0]?.down).toBe(true);
  });

  it('a stall that ends in time is said to be over, and the wait goes on', { timeout: 60_000 }, async () => {
    const notes: boolean[] = [];
    let heard = (): void => undefined;
    const down = new Promise<void>((resolve) => (heard = resolve));
    let back = (): void => undefined;
    const over = new Promise<void>((resolve) => (back = resolve));
    const stop = new AbortController();
    const first = firstResult('stall2');
    const following = followRun(r, 'stall2', {
      onResult: first.onResult,
      done: () => false,
      until: stop.signal,
      pollMs: 50,
      redisGoneMs: 60_000,
      onRedis: (d, _forMs, refused) => {
        if (refused !== undefined) return;
        notes.push(d);
        (d ? heard : back)();
      },
    });
    await first.read;
    const pid = server.pid() as number;
    process.kill((stopped = pid), 'SIGSTOP');
    try {
      await down;
    } finally {
      process.kill(pid, 'SIGCONT');
      stopped = undefined;
    }
    await over;
    stop.abort();
    await expect(following).resolves.toBe(1);
    expect(notes.at(-1)).toBe(false);
  });
});

describe('a task list cancelled while Redis does not answer', () => {
  let w: SchedulerWorld;
  beforeAll(async () => (w = await startSchedulerWorld({ agents: 1, prefix: 'gxst-' })));
  afterAll(async () => {
    if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
    stopped = undefined;
    await w?.close();
  });

  it('ends cancelled, without waiting for its cancel writes that cannot land', { timeout: 90_000 }, async () => {
    const agents = w.agents.map((a) => a.address);
    async function* tasks(): AsyncGenerator<TaskInput> {
      for (let i = 1; i <= 4; i++) yield { taskId: String(i), agents, target: { any: true }, argv: ['sh', '-c', 'echo up; sleep 60'] };
    }
    const cancel = new AbortController();
    const results: TaskResult[] = [];
    let started = (): void => undefined;
    const running = new Promise<void>((resolve) => (started = resolve));
    let heard = (): void => undefined;
    const down = new Promise<void>((resolve) => (heard = resolve));
    const run = streamRun(tasks(), {
      settings: w.settings,
      signer: w.signer,
      connect: w.connect(),
      window: 2,
      worker: 'always',
      record: { argv: ['sh'], fleet: '', agents: 1, mode: 'tasks' },
      cancel: cancel.signal,
      onLive: () => started(),
      onRedis: (d, _forMs, refused) => void (d && refused === undefined && heard()),
      onResult: (r) => void results.push(r),
    });
    run.catch(() => undefined);
    await running;
    const pid = w.redis.pid() as number;
    process.kill((stopped = pid), 'SIGSTOP');
    try {
      await down;
      cancel.abort();
      const out = await run;
      expect(out).toMatchObject({ cancelled: true });
      // Each enqueued task has a result: none came, so it may still run (unknown), not an error.
      expect(out.total).toBeGreaterThan(0);
      expect(results.map((r) => ({ id: r.taskId, outcome: r.outcome, reason: r.reason })).sort((a, b) => a.id.localeCompare(b.id))).toEqual(
        Array.from({ length: out.total }, (_, i) => ({ id: String(i + 1), outcome: 'unknown', reason: 'CANCELLED' })),
      );
      expect(results.every((r) => /^no result: the run was cancelled and Redis does not answer; the task may still run$/.test(r.error ?? ''))).toBe(true);
      expect({ unknown: out.counts.unknown, error: out.counts.error ?? 0 }).toEqual({ unknown: out.total, error: 0 });
    } finally {
      process.kill(pid, 'SIGCONT');
      stopped = undefined;
    }
  });
});
