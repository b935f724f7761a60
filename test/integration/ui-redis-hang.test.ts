/**
 * The dashboard over a Redis that hangs (redis-server stopped by SIGSTOP: its connections stay
 * up, nothing answers): every request that needs Redis is answered, 503 saying Redis does not
 * answer, the rest are served as ever, and all is well again once Redis goes on (SIGCONT).
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertBundle } from '../../certs/index.js';
import { SchedulerMetrics } from '../../scheduler/daemon/metrics.js';
import { Dashboard, redisSettingsFromUrl, TaskQueue } from '../../scheduler/index.js';
import { runCancelKey } from '../../scheduler/queue/cancel.js';
import { RUN_FEED_KEY, runFeedKey } from '../../scheduler/queue/run-feed.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
// No agent is watched: the monitor credentials are never read.
const creds = {} as CertBundle;

let redis: TestRedis;
let queue: TaskQueue;
let dash: Dashboard;
let stopped: number | undefined;

function call(path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = method === 'POST' ? { 'x-gaxx-token': dash.token } : {};
    const req = request({ host: '127.0.0.1', port: dash.port, path: `${path}${method === 'GET' ? `?token=${dash.token}` : ''}`, method, headers }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  redis = await startRedis({ tcp: true });
  queue = await TaskQueue.open(redisSettingsFromUrl(redis.url));
  const now = Date.now();
  await queue.redis.hset(runFeedKey('r1'), { total: '1', createdAt: String(now), command: 'true' });
  await queue.redis.zadd(RUN_FEED_KEY, now, 'r1');
  // The daemon's own metrics read the queue depth from Redis at each scrape.
  const metrics = new SchedulerMetrics();
  metrics.attach({ depth: () => queue.depth() });
  dash = await Dashboard.start({
    ownMetrics: () => metrics.text(),
    listen: '127.0.0.1:0',
    creds,
    targets: async () => [],
    redis: queue.redis,
    depth: () => queue.depth(),
    scrapeIntervalMs: 1000,
    tickMs: 100,
    log: quiet,
  });
});

afterAll(async () => {
  // A test that timed out never reached its finally.
  if (stopped) process.kill(stopped, 'SIGCONT');
  await dash?.stop();
  await queue?.close();
  await redis?.destroy();
});

describe('redis hangs', () => {
  it('answers a cancel 503 saying Redis does not answer, serves the rest, and cancels once Redis answers again', { timeout: 60_000 }, async () => {
    await expect.poll(async () => JSON.parse((await call('/api/state')).body).runs.map((r: { runId: string }) => r.runId), { timeout: 10_000 }).toEqual(['r1']);
    const pid = redis.pid() as number;
    process.kill((stopped = pid), 'SIGSTOP');
    try {
      const cancel = await call('/api/runs/r1/cancel', 'POST');
      expect(cancel.status).toBe(503);
      expect(JSON.parse(cancel.body).error).toMatch(/^redis is not answering \(no reply within \d+ s\) cancelling run r1/);
      // The page and the state are served, saying why runs and queue stand still.
      await expect.poll(async () => JSON.parse((await call('/api/state')).body).redis.error, { timeout: 20_000 }).toMatch(/^redis is not answering/);
      expect((await call('/')).status).toBe(200);
      // A scrape leaves out the queue depth rather than waiting for it.
      const scrape = await call('/metrics');
      expect(scrape.status).toBe(200);
      expect(scrape.body).toContain('# TYPE gaxx_scheduler_queue_depth gauge');
      expect(scrape.body).not.toMatch(/^gaxx_scheduler_queue_depth\{/m);
    } finally {
      process.kill(pid, 'SIGCONT');
      stopped = undefined;
    }
    const again = await call('/api/runs/r1/cancel', 'POST');
    expect(again.status).toBe(202);
    expect(await queue.redis.exists(runCancelKey('r1'))).toBe(1);
    await expect.poll(async () => JSON.parse((await call('/api/state')).body).redis.error, { timeout: 20_000 }).toBeNull();
    expect((await call('/metrics')).body).toMatch(/^gaxx_scheduler_queue_depth\{state="waiting"\} 0$/m);
  });
});
