/**
 * The set-up the scheduler integration tests share: a temp dir, the test PKI, a real
 * redis-server, N real agents (built, run as nobody) and a TaskQueue. One world per file
 * (beforeAll, or useSchedulerWorld); close() in afterAll tears it down in a fixed order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { loadCertDir } from '../../certs/index.js';
import { createTaskSigner, type InfoResponse__Output, type TaskSigner } from '../../proto/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { agentConnector } from '../../scheduler/dispatch/connector.js';
import { TaskQueue } from '../../scheduler/queue/queue.js';
import { redisSettingsFromUrl, type RedisSettings } from '../../scheduler/redis/redis.js';
import { startAgent, stopAllAgents, type AgentProcess } from './agent.js';
import { makePki, type MakePkiOptions, type Pki } from './pki.js';
import { startRedis, type TestRedis } from './redis.js';
import { stopAllSchedulers } from './scheduler.js';

export interface SchedulerWorldOptions {
  /** Agents to start with the PKI's agent cert dir (0 when the test starts its own). */
  agents: number;
  /** Prefix of the temp dir's name, e.g. 'gxs-'. */
  prefix: string;
  /** Passed to makePki (fleet/host of the agent cert). */
  pki?: MakePkiOptions;
}

export interface SchedulerWorld {
  dir: string;
  pki: Pki;
  redis: TestRedis;
  settings: RedisSettings;
  agents: AgentProcess[];
  /** Writable: a test that reopens the queue stores the new one here, so close() closes that one. */
  queue: TaskQueue;
  /** An agent connector with the scheduler's client certificate. */
  connect(): ReturnType<typeof agentConnector>;
  /** Signs runs with the PKI's operator key (agents run queued work only as an operator signed it). */
  signer: TaskSigner;
  /** Stops schedulers, queue, every agent and redis, then removes the dir. */
  close(): Promise<void>;
}

/**
 * Tears down in the order the tests always used: schedulers first (they hold agent calls and
 * redis connections), then the queue, agents, redis, and the dir last. Agents and scheduler
 * processes are tracked by their helpers, so ones a test started itself are stopped too.
 */
async function teardown(dir: string, queue?: TaskQueue, redis?: TestRedis): Promise<void> {
  await stopAllSchedulers();
  await queue?.close();
  await stopAllAgents();
  await redis?.destroy();
  rmSync(dir, { recursive: true, force: true });
}

/** A task signer with the certificate and key of an operator cert dir. */
export function operatorSigner(certDir: string): TaskSigner {
  const b = loadCertDir(certDir);
  return createTaskSigner(b.certPem, b.keyPem);
}

/** Starts the world; if any step fails, what was started is torn down before rethrowing. */
export async function startSchedulerWorld(o: SchedulerWorldOptions): Promise<SchedulerWorld> {
  const dir = mkdtempSync(join(tmpdir(), o.prefix));
  let redis: TestRedis | undefined;
  let queue: TaskQueue | undefined;
  try {
    const pki = await makePki(dir, o.pki);
    redis = await startRedis();
    const settings = redisSettingsFromUrl(redis.url);
    const agents = await Promise.all(Array.from({ length: o.agents }, () => startAgent({ certsDir: pki.agent.dir })));
    queue = await TaskQueue.open(settings);
    const world: SchedulerWorld = {
      dir,
      pki,
      redis,
      settings,
      agents,
      queue,
      connect: () => agentConnector(loadCertDir(pki.clients.scheduler.dir)),
      signer: operatorSigner(pki.clients.operator.dir),
      close: () => teardown(world.dir, world.queue, world.redis),
    };
    return world;
  } catch (err) {
    await teardown(dir, queue, redis);
    throw err;
  }
}

/**
 * Registers the file's (or describe block's) beforeAll/afterAll: the world is started before its
 * tests and closed after them. Filled in by beforeAll: read its fields inside tests and hooks,
 * not at import time.
 */
export function useSchedulerWorld(o: SchedulerWorldOptions): SchedulerWorld {
  const w = {} as SchedulerWorld;
  beforeAll(async () => {
    Object.assign(w, await startSchedulerWorld(o));
    // What this object holds is torn down (a test that reopens the queue stores it here).
    w.close = () => teardown(w.dir, w.queue, w.redis);
  });
  afterAll(async () => {
    await w.close?.();
  });
  return w;
}

/** Agent `a`'s Info, asked as the world's scheduler (its client certificate) on a connection of its own. */
export async function agentInfo(world: Pick<SchedulerWorld, 'pki'>, a: Pick<AgentProcess, 'address'>): Promise<InfoResponse__Output> {
  const c = AgentClient.connect({ address: a.address }, loadCertDir(world.pki.clients.scheduler.dir));
  try {
    return await c.info();
  } finally {
    c.close();
  }
}

/** Executions agent `a` counted since it started (its Info, asked as the world's scheduler). */
export async function agentStartedTotal(world: Pick<SchedulerWorld, 'pki'>, a: Pick<AgentProcess, 'address'>): Promise<number> {
  return Number((await agentInfo(world, a)).tasksStartedTotal);
}
