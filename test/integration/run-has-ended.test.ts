// Whether a run has ended, as a late stop judges it (run.ts: a `--resume` stopped while it prints
// cancels nothing once the run ended): every task the run will have has its result. A task list
// whose gaxx run still reads its input has not ended though every task so far has its result.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { taskResult } from '../../scheduler/index.js';
import { publishResult } from '../../scheduler/queue/results.js';
import { runHasEnded } from '../../scheduler/queue/run-control.js';
import { createRunRecord, noteEnqueued, updateRunRecord } from '../../scheduler/queue/run-index.js';
import { createRedis, waitReady } from '../../scheduler/redis/redis.js';
import { redisSettingsFromUrl } from '../../scheduler/redis/url.js';
import type { Cluster, Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../helpers/redis.js';

let server: TestRedis;
let redis: Redis | Cluster;

beforeAll(async () => {
  server = await startRedis();
  redis = createRedis(redisSettingsFromUrl(server.url), 'producer');
  await waitReady(redis);
});
afterAll(async () => {
  redis?.disconnect();
  await server?.destroy();
});

const RECORD = { argv: ['true'], fleet: '', agents: 1, mode: 'tasks' as const };
const succeeded = (runId: string, taskId: string) => taskResult({ runId, taskId, host: '127.0.0.1:8088', outcome: 'succeeded', reason: '' }, { exitCode: 0 });

describe('runHasEnded', () => {
  it('a task list still being read, its submitter alive: not ended, though every task so far has its result', async () => {
    await createRunRecord(redis, { ...RECORD, runId: 'rReading', startedAt: Date.now(), total: null });
    await noteEnqueued(redis, 'rReading', 1);
    await publishResult(redis, succeeded('rReading', '1'), []);
    expect(await runHasEnded(redis, 'rReading', ['1'])).toBe(false);
    // Its input all read (total set): ended.
    await updateRunRecord(redis, 'rReading', { total: 1 });
    expect(await runHasEnded(redis, 'rReading', ['1'])).toBe(true);
  });

  it('a fixed list: ended once each of its tasks has its result', async () => {
    await createRunRecord(redis, { ...RECORD, runId: 'rFixed', startedAt: Date.now(), total: 2, enqueued: 2 });
    await publishResult(redis, succeeded('rFixed', '1'), []);
    expect(await runHasEnded(redis, 'rFixed', ['1', '2'])).toBe(false);
    await publishResult(redis, succeeded('rFixed', '2'), []);
    expect(await runHasEnded(redis, 'rFixed', ['1', '2'])).toBe(true);
  });

  it('a run without a record (enqueued without the CLI): by the results of its tasks', async () => {
    await publishResult(redis, succeeded('rBare', 'a'), []);
    expect(await runHasEnded(redis, 'rBare', ['a', 'b'])).toBe(false);
    await publishResult(redis, succeeded('rBare', 'b'), []);
    expect(await runHasEnded(redis, 'rBare', ['a', 'b'])).toBe(true);
  });
});
