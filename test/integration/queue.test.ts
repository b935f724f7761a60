import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa } from '../../certs/index.js';
import { createTaskSigner, type TaskSigner } from '../../proto/index.js';
import { forgetFleet, registerFleet, registeredFleets } from '../../scheduler/queue/fleets.js';
import { fleetTargets } from '../../scheduler/ui/targets.js';
import { expireAbandonedRuns } from '../../scheduler/queue/abandoned.js';
import { TaskQueue } from '../../scheduler/queue/queue.js';
import { ABANDONED_RUN_MS, listRuns, RUNS_KEY } from '../../scheduler/queue/runs.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { redisSettingsFromUrl } from '../../scheduler/redis/redis.js';
import type { TaskInput } from '../../scheduler/queue/task.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

// Deliberately loose: some tests send wrong types, as a caller outside TypeScript could.
const tasks = (n: number, over: Record<string, unknown> = {}): TaskInput[] =>
  Array.from({ length: n }, (_, i) => ({ taskId: `t${i}`, agents: ['127.0.0.1:8088'], target: { any: true }, argv: ['true'], ...over }) as TaskInput);

describe('TaskQueue', () => {
  let redis: TestRedis;
  let q: TaskQueue;
  let signer: TaskSigner;
  const dir = mkdtempSync(join(tmpdir(), 'gxq-'));
  beforeAll(async () => {
    const { ca } = await FleetCa.init(join(dir, 'ca'));
    const op = await ca.issue({ identity: { role: 'operator', name: 'alice' } });
    signer = createTaskSigner(op.certPem, op.keyPem);
    redis = await startRedis({ fsync: 'always' });
    q = await TaskQueue.open(redisSettingsFromUrl(redis.url));
  });
  afterAll(async () => {
    await q?.close();
    await redis?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('enqueues a run as jobs <runId>-<taskId>; the same run twice adds nothing', async () => {
    const run = { runId: 'dup1', tasks: tasks(5) };
    const a = await q.enqueueRun(run, signer);
    expect(a.jobIds).toEqual(['dup1-t0', 'dup1-t1', 'dup1-t2', 'dup1-t3', 'dup1-t4']);
    await q.enqueueRun(run, signer);
    expect((await q.depth(['dup1'])).waiting).toBe(5);
    const job = await q.queueFor('dup1').getJob('dup1-t3');
    expect(job?.data).toMatchObject({ runId: 'dup1', taskId: 't3', argv: ['true'] });
    expect(job?.opts.removeOnComplete).toMatchObject({ age: expect.any(Number), count: expect.any(Number) });
    expect(job?.opts.removeOnFail).toMatchObject({ age: expect.any(Number), count: expect.any(Number) });
    await q.forgetRun('dup1');
    expect((await q.depth()).waiting).toBe(0);
  });

  it.each([
    ['wrong types', { argv: 'uptime' }, 'tasks.0.argv'],
    ['argv empty', { argv: [] }, 'tasks.0.argv'],
    ['huge env', { env: { X: 'y'.repeat(100_000) } }, 'tasks.0.env'],
    ['unknown fleet', { agents: undefined, fleet: 'nosuchfleet' }, 'tasks.0.fleet', 'NOT_FOUND'],
  ])('refuses %s at enqueue and writes nothing', async (_n, over, path, code = 'INVALID_ARGUMENT') => {
    const err = await q.enqueueRun({ runId: 'bad1', tasks: tasks(3, over) }, signer).catch((e: unknown) => e);
    expect(err).toMatchObject({ code });
    expect((err as { details: { issues: Array<{ path: string }> } }).details.issues.map((i) => i.path)).toContain(path);
    expect(await q.queueFor('bad1').getJob('bad1-t0')).toBeUndefined();
    expect((await q.depth()).waiting).toBe(0);
  });

  it("writes a run's registry entry before its jobs, and leaves no job behind when the entry cannot be written", async () => {
    // Order: what Redis ran, as MONITOR shows it.
    const mon = await (q.redis as Redis).monitor();
    const seen: string[] = [];
    mon.on('monitor', (_t: string, args: string[]) => seen.push(`${args[0]?.toLowerCase()} ${args[1] ?? ''}`));
    try {
      await q.enqueueRun({ runId: 'order1', tasks: tasks(2) }, signer);
      // The monitor's feed may come after the enqueue's replies.
      const firstJobOf = () => seen.findIndex((c) => c.startsWith('hmset {gaxx}:run.order1:order1-'));
      await expect.poll(firstJobOf, { timeout: 10_000, interval: 10 }).toBeGreaterThanOrEqual(0);
      const entry = seen.findIndex((c) => c === `zadd ${RUNS_KEY}`);
      expect(entry).toBeGreaterThanOrEqual(0);
      expect(firstJobOf()).toBeGreaterThan(entry);
    } finally {
      mon.disconnect();
      await q.forgetRun('order1');
    }
    // The registry made unwritable (a key of the wrong type): the jobs that went out with the
    // entry are taken back, and the enqueue fails with Redis's reason.
    const runs = await q.redis.zrange(RUNS_KEY, 0, -1);
    await q.redis.del(RUNS_KEY);
    await q.redis.set(RUNS_KEY, 'not a sorted set');
    try {
      const err = await q.enqueueRun({ runId: 'noreg1', tasks: tasks(3) }, signer).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'REDIS_UNAVAILABLE', message: expect.stringMatching(/^enqueue failed: WRONGTYPE/) });
      const counts = await q.queueFor('noreg1').getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
      expect(await q.queueFor('noreg1').getJob('noreg1-t0')).toBeUndefined();
    } finally {
      await q.redis.del(RUNS_KEY);
      if (runs.length > 0) await q.redis.zadd(RUNS_KEY, ...runs.flatMap((r) => [Date.now(), r]));
      await q.forgetRun('noreg1');
    }
  });

  it('accepts a registered fleet', async () => {
    await registerFleet(q.redis, 'web', [{ host: 'h1', address: '127.0.0.1:8088' }]);
    await q.enqueueRun({ runId: 'fleet1', tasks: tasks(1, { agents: undefined, fleet: 'web' }) }, signer);
    expect(await q.queueFor('fleet1').getJob('fleet1-t0')).toBeDefined();
    await q.forgetRun('fleet1');
  });

  it('the fleet directory says where each agent serves metrics (host:9091 unless registered otherwise); a new list replaces the old, forgetting removes both', async () => {
    await registerFleet(q.redis, 'dir1', [
      { host: 'h1', address: '127.0.0.2:8088', metrics: '127.0.0.2:40001' },
      { host: 'h2', address: '127.0.0.3:8088' },
    ]);
    const where = async () => (await fleetTargets(q.redis, ['dir1'])).map((t) => `${t.host} ${t.address} ${t.metricsAddress}`);
    expect(await where()).toEqual(['h1 127.0.0.2:8088 127.0.0.2:40001', 'h2 127.0.0.3:8088 127.0.0.3:9091']);
    // Re-registered without it (the agent moved): its old metrics address is not kept.
    await registerFleet(q.redis, 'dir1', [{ host: 'h1', address: '127.0.0.2:8088' }]);
    expect(await where()).toEqual(['h1 127.0.0.2:8088 127.0.0.2:9091']);
    await registerFleet(q.redis, 'dir1', [{ host: 'h1', address: '127.0.0.2:8088', metrics: '127.0.0.2:40002' }]);
    // Entries that are no host:port (anyone who can write to Redis can add them) are left out; the others stay watched.
    await q.redis.hset('{gaxx}:fleet:dir1', 'bad', 'not an address', 'badm', '127.0.0.4:8088');
    await q.redis.hset('{gaxx}:fleet:dir1:metrics', 'badm', '[::1');
    expect(await where()).toEqual(['h1 127.0.0.2:8088 127.0.0.2:40002']);
    await forgetFleet(q.redis, 'dir1');
    expect(await registeredFleets(q.redis)).not.toContain('dir1');
    expect(await q.redis.exists('{gaxx}:fleet:dir1', '{gaxx}:fleet:dir1:metrics')).toBe(0);
  });

  it('withdraws the jobs of a run that no worker has taken', async () => {
    const enq = await q.enqueueRun({ runId: 'wd1', tasks: tasks(3) }, signer);
    expect(await q.withdraw(enq.jobIds)).toBe(3);
    expect((await q.depth()).waiting).toBe(0);
    expect(await q.withdraw(enq.jobIds)).toBe(0);
  });

  it('expires the untaken jobs of a run abandoned for longer than the limit, with an EXPIRED result each', async () => {
    await q.enqueueRun({ runId: 'old1', tasks: tasks(2) }, signer);
    await q.enqueueRun({ runId: 'young1', tasks: tasks(1) }, signer);
    await q.redis.zadd(RUNS_KEY, Date.now() - ABANDONED_RUN_MS - 1000, 'old1');
    expect(await expireAbandonedRuns(q)).toBe(2);
    const res = await waitForRun(q.redis, 'old1', ['t0', 't1'], { timeoutMs: 10_000 });
    for (const r of res.results.values()) expect(r).toMatchObject({ outcome: 'error', reason: 'EXPIRED', attempts: 0 });
    const runs = await listRuns(q.redis);
    expect([runs.includes('old1'), runs.includes('young1')]).toEqual([false, true]);
    expect((await q.depth(['young1'])).waiting).toBe(1);
    await q.forgetRun('young1');
  });

  it('loses none of 1,000 queued tasks when redis-server restarts (AOF)', async () => {
    await q.enqueueRun({ runId: 'aof1', tasks: tasks(1000) }, signer);
    await q.close();
    await redis.kill9();
    await redis.restart();
    q = await TaskQueue.open(redisSettingsFromUrl(redis.url));
    expect((await q.depth()).waiting).toBe(1000);
    const ids = new Set((await q.queueFor('aof1').getWaiting(0, 2000)).map((j) => j.id));
    expect(ids.size).toBe(1000);
    expect(ids.has('aof1-t999')).toBe(true);
  });

  it('fails fast with REDIS_UNAVAILABLE when redis is down', async () => {
    await redis.stop();
    const t0 = Date.now();
    await expect(q.enqueueRun({ runId: 'down1', tasks: tasks(1) }, signer)).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' });
    await expect(TaskQueue.open(redisSettingsFromUrl(redis.url), 1000)).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' });
    expect(Date.now() - t0).toBeLessThan(15_000);
    await redis.restart();
  });
});
