import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, redisSettingsFromUrl, waitReady } from '../../scheduler/redis.js';
import { publishResult, runEventsKey, waitForRun, type TaskResult } from '../../scheduler/results.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import type { Redis } from 'ioredis';

const result = (taskId: string, over: Partial<TaskResult> = {}): TaskResult => ({
  runId: 'res1', taskId, host: '127.0.0.1:1', outcome: 'succeeded', exitCode: 0, signal: null, reason: '',
  durationMs: 3, stdoutBytes: 2, stderrBytes: 0, truncated: false, attempts: 1, attached: false, replayed: false,
  finishedAt: new Date().toISOString(), ...over,
});

describe('run results stream', () => {
  let redis: TestRedis;
  let r: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    r = createRedis(redisSettingsFromUrl(redis.url), 'worker') as Redis;
    await waitReady(r);
  });
  afterAll(async () => {
    r?.disconnect();
    await redis?.destroy();
  });

  it('publishes each task once, with its output, and waitForRun collects every result', async () => {
    const big = Buffer.alloc(200 * 1024, 7);
    expect(await publishResult(r, result('a'), [{ stream: 1, data: Buffer.from('hi') }, { stream: 2, data: big }])).toBe(true);
    // A replayed re-dispatch publishes again: ignored.
    expect(await publishResult(r, result('a', { replayed: true }), [{ stream: 1, data: Buffer.from('hi') }])).toBe(false);
    const seen: string[] = [];
    const waiting = waitForRun(r, 'res1', ['a', 'b'], { timeoutMs: 10_000, onResult: (x) => seen.push(x.taskId) });
    setTimeout(() => void publishResult(r, result('b', { outcome: 'failed', exitCode: 3 }), []), 100);
    const out = await waiting;
    expect(seen.sort()).toEqual(['a', 'b']);
    expect(out.results.get('a')?.replayed).toBe(false);
    expect(out.results.get('b')).toMatchObject({ outcome: 'failed', exitCode: 3 });
    const chunks = out.output.get('a') ?? [];
    expect(Buffer.concat(chunks.filter((c) => c.stream === 1).map((c) => c.data)).toString()).toBe('hi');
    expect(Buffer.concat(chunks.filter((c) => c.stream === 2).map((c) => c.data)).equals(big)).toBe(true);
    expect(await r.pttl(runEventsKey('res1'))).toBeGreaterThan(0);
  });

  it('keeps waiting through a redis-server restart', async () => {
    const waiting = waitForRun(r, 'res2', ['a'], { timeoutMs: 20_000 });
    await new Promise((ok) => setTimeout(ok, 100));
    await redis.restart();
    await waitReady(r, 10_000);
    await publishResult(r, result('a', { runId: 'res2' }), []);
    expect((await waiting).results.get('a')?.outcome).toBe('succeeded');
  });

  it('gives up with DEADLINE_EXCEEDED when results do not come', async () => {
    await expect(waitForRun(r, 'nores', ['x'], { timeoutMs: 300 })).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
  });
});
