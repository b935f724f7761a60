// A follower paced by its reader (gaxx run and runs wait pace it by their stdout): after a read's
// results are handled it reads no more until the reader says so, so results wait in Redis, not in
// the process. Real redis-server.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followRun } from '../../scheduler/queue/follow.js';
import { publishResult, runEventsKey, taskResult } from '../../scheduler/queue/results.js';
import { eventually } from '../helpers/poll.js';
import { redisAndConnection } from '../helpers/redis.js';

let r: Redis;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => ({ conn: r, close } = await redisAndConnection('worker')));
afterAll(() => close?.());

const publish = (runId: string, taskId: string) =>
  publishResult(r, taskResult({ runId, taskId, host: '127.0.0.1:1', outcome: 'succeeded', reason: '' }, { exitCode: 0, attempts: 1 }), [
    { stream: 1, data: Buffer.alloc(1024, 'x') },
  ]);

describe('followRun paced by its reader', () => {
  it('reads nothing more while the reader is backed up, and goes on once it drained', async () => {
    for (const t of ['a', 'b', 'c']) await publish('fp1', t);
    const seen: string[] = [];
    let release = (): void => undefined;
    let paces = 0;
    const following = followRun(r, 'fp1', {
      onResult: (x) => seen.push(x.taskId),
      // The first pace holds until released (a stdout that is not read), later ones pass.
      paced: () => (++paces === 1 ? new Promise<void>((resolve) => (release = resolve)) : Promise.resolve()),
      done: (n) => n >= 5,
      timeoutMs: 30_000,
      pollMs: 10,
    });
    expect(await eventually(() => paces === 1, 30_000, 10)).toBe(true);
    expect(seen).toEqual(['a', 'b', 'c']);
    for (const t of ['d', 'e']) await publish('fp1', t);
    expect(await r.xlen(runEventsKey('fp1'))).toBe(10);
    // A follower without a pace, started after d and e were published, reads the whole run; one
    // that did not wait for its reader would have had them at least as soon.
    const unpaced: string[] = [];
    expect(await followRun(r, 'fp1', { onResult: (x) => unpaced.push(x.taskId), done: (n) => n >= 5, timeoutMs: 30_000, pollMs: 10 })).toBe(5);
    expect(unpaced).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(seen).toEqual(['a', 'b', 'c']);
    release();
    expect(await following).toBe(5);
    expect(seen).toEqual(['a', 'b', 'c', 'd', 'e']);
  });
});
