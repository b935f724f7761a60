import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keepSpareConnection, type SpareConnection } from '../../scheduler/dispatch/spare-connection.js';
import { createRedis, KEY_PREFIX, redisSettingsFromUrl, waitReady, type RedisSettings } from '../../scheduler/redis/redis.js';
import { redisAndConnection, type TestRedis } from '../helpers/redis.js';

/** Runs one job through a new Worker on `conn`; returns the Worker's blocking connection's id and name. */
async function oneJob(conn: Redis, producer: Redis, name: string): Promise<{ blockingId: string; blockingName: string | null }> {
  const q = new Queue(name, { connection: producer, prefix: KEY_PREFIX });
  await q.add('x', { n: 1 }, { jobId: `${name}-1` });
  let seen!: (v: number) => void;
  const processed = new Promise<number>((r) => (seen = r));
  const w = new Worker(name, async (job) => seen((job.data as { n: number }).n), { connection: conn, prefix: KEY_PREFIX });
  try {
    expect(await processed).toBe(1);
    const blocking = (await (w as unknown as { blockingConnection: { client: Promise<Redis> } }).blockingConnection.client) as Redis;
    const blockingId = String(await blocking.client('ID'));
    const blockingName = (await blocking.client('GETNAME')) as string | null;
    return { blockingId, blockingName };
  } finally {
    await w.close();
    await q.obliterate({ force: true });
    await q.close();
  }
}

describe('keepSpareConnection: a Worker starts on a connection readied ahead', () => {
  let redis: TestRedis;
  let settings: RedisSettings;
  let producer: Redis;
  let close: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    ({ redis, conn: producer, close } = await redisAndConnection('worker'));
    settings = redisSettingsFromUrl(redis.url);
  });
  afterAll(() => close?.());

  /** A ready worker connection with a spare kept behind it, both closed after `fn`. */
  async function withSpare(fn: (conn: Redis, spare: SpareConnection) => Promise<void>): Promise<void> {
    const conn = createRedis(settings, 'worker') as Redis;
    await waitReady(conn);
    const spare = keepSpareConnection(conn);
    try {
      expect(await spare.ready()).toBe(true);
      await fn(conn, spare);
    } finally {
      spare.close();
      conn.disconnect();
    }
  }

  /** How many clients the server has. */
  const clients = (): Promise<number> => producer.client('LIST').then((l) => String(l).split('\n').filter(Boolean).length);

  it('hands the ready spare to the next Worker, named as BullMQ asks, and makes another only on refill', async () => {
    await withSpare(async (conn, spare) => {
      // The spare's own id, before any Worker exists.
      const before = new Set(String(await producer.client('LIST')).match(/(?<=^|\n)id=\d+/g));
      const first = await oneJob(conn, producer, 'spare-a');
      expect(spare.taken).toBe(1);
      expect(before.has(`id=${first.blockingId}`)).toBe(true);
      expect(first.blockingName).toMatch(/^\{gaxx\}/);

      // Taken and not refilled: the next Worker duplicates as before (a new connection).
      const second = await oneJob(conn, producer, 'spare-b');
      expect(spare.taken).toBe(1);
      expect(second.blockingId).not.toBe(first.blockingId);

      spare.refill();
      expect(await spare.ready()).toBe(true);
      const third = await oneJob(conn, producer, 'spare-c');
      expect(spare.taken).toBe(2);
      expect(third.blockingName).toMatch(/^\{gaxx\}/);
    });
  });

  it('a spare that lived through a redis-server restart still starts the next Worker', async () => {
    await withSpare(async (conn, spare) => {
      await redis.restart();
      // Every connection comes back by itself: the producer, `conn` and the spare (waited for).
      await waitReady(producer, 10_000);
      await waitReady(conn, 10_000);
      await expect.poll(clients, { timeout: 10_000, interval: 20 }).toBe(3);
      // The restarted server has no scripts cached: the Worker's commands are sent in full again.
      const after = await oneJob(conn, producer, 'spare-restart');
      expect(spare.taken).toBe(1);
      expect(after.blockingName).toMatch(/^\{gaxx\}/);
    });
  });

  /** INFO calls the server has answered (the call that reads this one is counted in the next). */
  const infoCalls = async (): Promise<number> => Number(/cmdstat_info:calls=(\d+)/.exec(await producer.info('commandstats'))?.[1] ?? 0);

  it("a Worker on a connection and spare that have the server's version takes its first job without asking again, with the commands already defined", async () => {
    await withSpare(async (conn, spare) => {
      /** INFO calls a new Worker's start made, and whether its blocking connection uses `conn`'s command objects. */
      const startOne = async (name: string): Promise<{ infos: number; shared: boolean }> => {
        // The queue and its job first: the producer's own set-up asks for the version too.
        const q = new Queue(name, { connection: producer, prefix: KEY_PREFIX });
        await q.add('x', {}, { jobId: `${name}-1` });
        const before = await infoCalls();
        let seen!: () => void;
        const processed = new Promise<void>((r) => (seen = r));
        const w = new Worker(name, async () => seen(), { connection: conn, prefix: KEY_PREFIX });
        try {
          await processed;
          const infos = (await infoCalls()) - before - 1;
          const blocking = (await (w as unknown as { blockingConnection: { client: Promise<Redis> } }).blockingConnection.client) as Redis;
          const mine = conn.scriptsSet as Record<string, unknown>;
          const theirs = blocking.scriptsSet as Record<string, unknown>;
          const shared = Object.keys(mine).length > 0 && Object.keys(mine).every((k) => theirs[k] === mine[k]);
          return { infos, shared };
        } finally {
          await w.close();
          await q.obliterate({ force: true });
          await q.close();
        }
      };
      // The first Worker's own connection asks once; its blocking one is the spare, which asked
      // while it was made (before any Worker had defined BullMQ's commands on `conn`).
      expect(await startOne('version-a')).toEqual({ infos: 1, shared: false });
      // The next spare also takes those commands from `conn`, and the Worker runs its job with them.
      spare.refill();
      expect(await spare.ready()).toBe(true);
      expect(await startOne('version-b')).toEqual({ infos: 0, shared: true });
      expect(spare.taken).toBe(2);
    });
  });

  it('keeps the answer only until the connection closes; INFO of a section always goes to the server', async () => {
    await withSpare(async (conn) => {
      const runId = (info: string): string | undefined => /run_id:(\w+)/.exec(info)?.[1];
      const first = await conn.info();
      const calls = await infoCalls();
      expect(await conn.info()).toBe(first);
      expect(await infoCalls()).toBe(calls + 1);
      await conn.info('server');
      expect(await infoCalls()).toBe(calls + 3);
      // A restarted server (a new run_id) is asked again once the connection is back.
      await redis.restart();
      await waitReady(producer, 10_000);
      await waitReady(conn, 10_000);
      const now = runId(await producer.info('server'));
      expect(now).not.toBe(runId(first));
      expect(runId(await conn.info())).toBe(now);
    });
  });

  it('leaves other duplicates alone, and close() drops the spare and restores duplicate', async () => {
    const conn = createRedis(settings, 'worker') as Redis;
    await waitReady(conn);
    const spare = keepSpareConnection(conn);
    expect(Object.hasOwn(conn, 'duplicate')).toBe(true);
    // One spare per connection: a second keeper changes nothing.
    expect(keepSpareConnection(conn).taken).toBe(0);
    expect(await spare.ready()).toBe(true);
    const other = conn.duplicate({ connectionName: 'x', db: 0 });
    try {
      await waitReady(other);
      expect(spare.taken).toBe(0);
      const withOne = await clients();
      spare.close();
      // The spare's connection goes away (waited for, not slept on).
      await expect.poll(clients, { timeout: 10_000, interval: 20 }).toBe(withOne - 1);
      expect(Object.hasOwn(conn, 'duplicate')).toBe(false);
      expect(Object.hasOwn(conn, 'info')).toBe(false);
      const plain = conn.duplicate();
      plain.disconnect();
      expect(spare.taken).toBe(0);
      expect(await spare.ready()).toBe(false);
    } finally {
      other.disconnect();
      conn.disconnect();
    }
  });
});
