// Results and run records read back from Redis are external input: a forged or malformed one is
// skipped and reported by every reader, never counted, never fatal. Real redis-server.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followRun } from '../../scheduler/queue/follow.js';
import { publishResult, runDoneKey, runEventsKey, taskResult, type TaskResult } from '../../scheduler/queue/results.js';
import { storedResults } from '../../scheduler/queue/run-control.js';
import { createRunRecord, listRunRecords, runInfoKey, RUN_INDEX_KEY } from '../../scheduler/queue/run-index.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { redisSettingsFromUrl } from '../../scheduler/redis/redis.js';
import { redisAndConnection, type TestRedis } from '../helpers/redis.js';

const result = (runId: string, taskId: string, over: Partial<TaskResult> = {}): TaskResult =>
  taskResult({ runId, taskId, host: '127.0.0.1:1', outcome: 'succeeded', reason: '' }, { exitCode: 0, attempts: 1, ...over });

let redis: TestRedis;
let r: Redis;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => ({ redis, conn: r, close } = await redisAndConnection('worker')));

afterAll(() => close?.());

/** Adds a result entry for `task` holding `json`, as a Redis writer without any key could. */
async function forge(runId: string, task: string, json: string): Promise<void> {
  await r.xadd(runEventsKey(runId), '*', 't', 'res', 'task', task, 'r', json, 'lb', '-1', 'lo', '0', 'ob', '0');
}

/** Every kind of bad result entry, for task `a` of run `runId` (or one it does not have). */
async function forgeAll(runId: string): Promise<void> {
  await forge(runId, 'a', '{not json');
  await forge(runId, 'a', 'null');
  await forge(runId, 'a', JSON.stringify({ ...result(runId, 'a'), taskId: '/../../../../tmp/escaped' }));
  await forge(runId, 'a', JSON.stringify(result('other', 'a')));
  await forge(runId, 'a', JSON.stringify(result(runId, 'b')));
  // Valid, but of a task the run does not have.
  await forge(runId, 'zz', JSON.stringify(result(runId, 'zz')));
}

describe('forged results', () => {
  it('waitForRun skips and reports each, and still collects the real results', async () => {
    await forgeAll('fw1');
    await publishResult(r, result('fw1', 'a'), [{ stream: 1, data: Buffer.from('hi') }]);
    // A second result for a task that has one (written past the publish script) is skipped too.
    await forge('fw1', 'a', JSON.stringify(result('fw1', 'a', { outcome: 'failed' })));
    await publishResult(r, result('fw1', 'b'), []);
    const ignored: string[] = [];
    const out = await waitForRun(r, 'fw1', ['a', 'b'], { timeoutMs: 10_000, onIgnored: (run, why) => ignored.push(`${run} ${why}`) });
    expect(out.results.get('a')).toMatchObject({ runId: 'fw1', taskId: 'a', outcome: 'succeeded' });
    expect(out.results.get('b')).toMatchObject({ runId: 'fw1', taskId: 'b', outcome: 'succeeded' });
    expect(ignored).toHaveLength(7);
    expect(ignored.every((x) => x.startsWith('fw1 '))).toBe(true);
  });

  it('followRun counts only results its reader accepts; the rest are reported, none ends the follow early', async () => {
    await forgeAll('ff1');
    await publishResult(r, result('ff1', 'a'), []);
    const seen: string[] = [];
    const ignored: string[] = [];
    const finished = await followRun(r, 'ff1', {
      accept: (ids) => ids.map((id) => id === 'a'),
      onResult: (x) => seen.push(x.taskId),
      onIgnored: (_run, why) => ignored.push(why),
      done: (n) => n >= 1,
      timeoutMs: 10_000,
    });
    expect(finished).toBe(1);
    expect(seen).toEqual(['a']);
    expect(ignored).toHaveLength(6);
  });

  it('runs show (storedResults) skips a null or malformed stored result and reports it', async () => {
    const settings = redisSettingsFromUrl(redis.url);
    await createRunRecord(r, { runId: 'fs1', argv: ['x'], fleet: 'a3', agents: 1, mode: 'tasks', startedAt: Date.now(), total: 3 });
    await publishResult(r, result('fs1', '1'), []);
    await r.hset(runDoneKey('fs1'), '2', 'null', '3', JSON.stringify(result('fs1', '4')));
    const ignored: string[] = [];
    const { results } = await storedResults(settings, 'fs1', (_run, why) => ignored.push(why));
    expect(results.map((x) => x.taskId)).toEqual(['1']);
    expect(ignored).toHaveLength(2);
  });
});

describe('forged run records', () => {
  it('a record that is not valid is left out of the listing and reported; the others are listed', async () => {
    const now = Date.now();
    await createRunRecord(r, { runId: 'good1', argv: ['true'], fleet: 'a3', agents: 1, mode: 'tasks', startedAt: now, total: 1 });
    const bad: Record<string, Record<string, string>> = {
      bad1: { argv: '"notanarray"' },
      bad2: { startedAt: '"soon"' },
      bad3: { counts: '{"__proto__":1}' },
      bad4: { argv: '{not json' },
      bad5: { runId: 'someoneelse' },
    };
    for (const [runId, over] of Object.entries(bad)) {
      await r.hset(runInfoKey(runId), {
        runId,
        argv: '["x"]',
        fleet: 'a3',
        agents: '1',
        mode: 'tasks',
        startedAt: String(now),
        seen: String(now),
        state: 'done',
        ...over,
      });
      await r.zadd(RUN_INDEX_KEY, now + 1, runId);
    }
    const ignored = new Map<string, string>();
    const listed = await listRunRecords(r, 100, (run, why) => ignored.set(run, why));
    expect(listed.map((x) => x.runId)).toContain('good1');
    expect(listed.map((x) => x.runId)).not.toEqual(expect.arrayContaining(['bad1']));
    expect([...ignored.keys()].sort()).toEqual(Object.keys(bad).sort());
    expect(ignored.get('bad1')).toMatch(/^argv: /);
  });
});
