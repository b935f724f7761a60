// A Redis that stops answering while its connections stay up (redis-server stopped by SIGSTOP,
// as a paused machine or a partition that sends no reset leaves it): a run's wait hears it is
// unreachable and ends at its bound, REDIS_UNAVAILABLE, as for a Redis that went away; its
// connection's events never say so. Real redis-server.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followRun } from '../../scheduler/queue/follow.js';
import { publishResult, taskResult } from '../../scheduler/queue/results.js';
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
