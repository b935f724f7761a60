/**
 * The run registry: which runs have (or had) jobs, so a worker can serve only its own run or
 * every run. Each run's jobs live in a queue of their own, `run.<runId>` (BullMQ keys
 * `{gaxx}:run.<runId>:*`), so the in-process worker of one `gaxx run` never takes another run's
 * job: an abandoned run's jobs wait for a daemon or for `gaxx run --resume ID`.
 *
 * - `{gaxx}:runs`: sorted set, member runId, score = when its owner last showed it is alive
 *   (enqueue, then every few seconds while `gaxx run` waits); a daemon serves every member.
 * - `{gaxx}:run:<runId>:meta`: when the run was first enqueued; `{gaxx}:run:<runId>:tasks`: hash
 *   of every task id enqueued for it -> its pinned host ('' for any-host tasks), added to by each
 *   enqueue (a task-list run is enqueued in many batches), for `--resume` and `runs wait`; both
 *   with the results' TTL.
 * - `{gaxx}:run:<runId>:records`: a task list's records by task id, written before each batch is
 *   enqueued, with the results' TTL (what `runs wait` and `--resume` give each result, and name
 *   its `--results` folder by).
 * - `{gaxx}:runs:new`: pub/sub channel, a run id per enqueue, so daemons start serving at once.
 */
import { QueueKeys } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import { compareText } from '../../proto/index.js';
import { gaxxKey, KEY_PREFIX } from '../redis/redis.js';
import { RESULT_TTL_MS } from './results.js';
import { TASK_ID } from './task.js';

export const RUNS_KEY = gaxxKey('runs');
export const RUNS_CHANNEL = gaxxKey('runs', 'new');
export const runMetaKey = (runId: string): string => gaxxKey('run', runId, 'meta');
export const runTasksKey = (runId: string): string => gaxxKey('run', runId, 'tasks');
/** A task list's records by task id (kept as long as the run's results): what each task was made from. */
export const runRecordsKey = (runId: string): string => gaxxKey('run', runId, 'records');
/**
 * A field of every task list's records hash that is no task id (TASK_ID starts with a letter or
 * digit): written with each batch, so that the hash is there for a list whose records are none of
 * them text (not UTF-8, too long) too, and its absence means the records expired.
 */
const RECORDS_KEPT = ':kept';

/**
 * Keeps the task-list records of a batch of a run's tasks (text, by task id), for whoever shows
 * the run's results later (`gaxx runs wait`, `gaxx run --resume`) as its own `gaxx run` does.
 */
export async function storeTaskRecords(redis: Redis | Cluster, runId: string, records: Readonly<Record<string, string>>): Promise<void> {
  await redis
    .multi()
    .hset(runRecordsKey(runId), { ...records, [RECORDS_KEPT]: '1' })
    .pexpire(runRecordsKey(runId), RESULT_TTL_MS)
    .exec()
    .then(throwFirst);
}

/** The task-list records of `taskIds` (undefined where a task has none kept). */
export async function taskRecords(redis: Redis | Cluster, runId: string, taskIds: readonly string[]): Promise<(string | undefined)[]> {
  if (taskIds.length === 0) return [];
  return (await redis.hmget(runRecordsKey(runId), ...taskIds)).map((r) => r ?? undefined);
}

/**
 * The task-list records of `taskIds`, or undefined when the run's records are no longer kept
 * (expired with its results, 24 hours after its last batch): then a task without one may have
 * had one. One MULTI, so the answer holds for the records read.
 */
export async function keptTaskRecords(redis: Redis | Cluster, runId: string, taskIds: readonly string[]): Promise<(string | undefined)[] | undefined> {
  const tx = redis.multi().exists(runRecordsKey(runId));
  if (taskIds.length > 0) tx.hmget(runRecordsKey(runId), ...taskIds);
  const res = await tx.exec();
  throwFirst(res);
  const [[, kept], read] = (res ?? [[null, 0]]) as [[null, number], [null, (string | null)[]] | undefined];
  if (kept === 0) return undefined;
  return (read?.[1] ?? []).map((r) => r ?? undefined);
}

/**
 * Whether what names a run's `--results` folders is still kept: a task list's records (`tasks`),
 * or the hosts its tasks of one task per host were pinned to (its tasks hash).
 */
export async function resultNamesKept(redis: Redis | Cluster, runId: string, mode: 'tasks' | 'each-host'): Promise<boolean> {
  return (await redis.exists(mode === 'tasks' ? runRecordsKey(runId) : runTasksKey(runId))) > 0;
}

/** The BullMQ queue name of a run's jobs (run ids have no ':' and no '-'). */
export const runQueueName = (runId: string): string => `run.${runId}`;

/** What `--resume` needs to wait for a run it did not enqueue. */
export interface RunMeta {
  runId: string;
  taskIds: string[];
  /** Task id -> pinned host ('' for any-host tasks). */
  hosts: Record<string, string>;
  createdAt: number;
}

/** How often a waiting owner refreshes its run's entry. */
export const RUN_TOUCH_MS = 5000;
/** A run whose owner has not shown itself this long, with jobs nobody took, expires. */
export const ABANDONED_RUN_MS = 6 * 3600 * 1000;

/**
 * Registers a run's enqueued tasks (added to those of its earlier batches: enqueueing a batch
 * again adds nothing new), its registry entry, and tells daemons. One MULTI: the tasks and the
 * entry are written together or not at all.
 */
export async function registerRun(redis: Redis | Cluster, meta: RunMeta): Promise<void> {
  const tx = redis.multi();
  // The first batch's meta stays (when the run began); each batch refreshes its TTL.
  tx.set(runMetaKey(meta.runId), JSON.stringify({ runId: meta.runId, createdAt: meta.createdAt }), 'PX', RESULT_TTL_MS, 'NX');
  tx.pexpire(runMetaKey(meta.runId), RESULT_TTL_MS);
  if (meta.taskIds.length > 0) {
    tx.hset(runTasksKey(meta.runId), Object.fromEntries(meta.taskIds.map((t) => [t, meta.hosts[t] ?? ''])));
    tx.pexpire(runTasksKey(meta.runId), RESULT_TTL_MS);
  }
  // The announcement goes out with the entry it announces.
  await tx.zadd(RUNS_KEY, Date.now(), meta.runId).publish(RUNS_CHANNEL, meta.runId).exec().then(throwFirst);
}

/** Refreshes a run's registry entry (its owner is alive). */
export async function touchRun(redis: Redis | Cluster, runId: string): Promise<void> {
  await redis.zadd(RUNS_KEY, 'XX', Date.now(), runId);
}

/** Drops a run from the registry (its jobs are gone). */
export async function unregisterRun(redis: Redis | Cluster, runId: string): Promise<void> {
  await redis.zrem(RUNS_KEY, runId);
}

/** Every registered run id. */
export async function listRuns(redis: Redis | Cluster): Promise<string[]> {
  return redis.zrange(RUNS_KEY, 0, -1);
}

const queueKeys = new QueueKeys(KEY_PREFIX);

/** The hash of run `runId`'s job `jobId` (BullMQ's key for it). */
export const runJobKey = (runId: string, jobId: string): string => queueKeys.toKey(runQueueName(runId), jobId);

/**
 * Whether `runId` names a run with something to serve: its meta (written with its registry
 * entry and announcement, before its jobs) or jobs waiting or running in its queue. One EXISTS
 * (an empty list or set is no key); a made-up id has neither.
 */
export async function runExists(redis: Redis | Cluster, runId: string): Promise<boolean> {
  const k = queueKeys.getKeys(runQueueName(runId));
  return (await redis.exists(runMetaKey(runId), k.wait as string, k.active as string, k.delayed as string, k.prioritized as string, k.paused as string)) > 0;
}

/**
 * Whether the run has a delayed job due within `ms` (BullMQ scores a delayed job by its due time
 * times 0x1000). gaxx delays a job by seconds (retries' backoff); one due hours from now is no
 * work of a run of gaxx's.
 */
export async function delayedDueWithin(redis: Redis | Cluster, runId: string, ms: number, now = Date.now()): Promise<boolean> {
  const first = await redis.zrange(queueKeys.getKeys(runQueueName(runId)).delayed as string, 0, 0, 'WITHSCORES');
  return first.length >= 2 && Math.floor(Number(first[1]) / 0x1000) <= now + ms;
}

/** Runs whose owner has not shown itself since `before` (ms epoch). */
export async function staleRuns(redis: Redis | Cluster, before: number): Promise<string[]> {
  return redis.zrangebyscore(RUNS_KEY, '-inf', before);
}

/**
 * The run's meta with every task enqueued for it (in task order), or null when unknown (never
 * enqueued, or expired). A meta written before tasks had a key of their own lists them itself.
 */
export async function loadRunMeta(redis: Redis | Cluster, runId: string): Promise<RunMeta | null> {
  const raw = await redis.get(runMetaKey(runId));
  if (raw === null) return null;
  const stored = StoredMetaSchema.safeParse(parsed(raw));
  const meta = stored.success ? stored.data : {};
  const hosts: Record<string, string> = {};
  const add = (taskId: string, host: string): void => {
    // Only ids a task can have (never `__proto__`).
    if (TASK_ID.test(taskId)) hosts[taskId] = host;
  };
  for (const [t, h] of Object.entries(meta.hosts ?? {})) add(t, h);
  for (const t of meta.taskIds ?? []) if (!Object.hasOwn(hosts, t)) add(t, '');
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(runTasksKey(runId), cursor, 'COUNT', 5000);
    cursor = next;
    for (let i = 0; i + 1 < flat.length; i += 2) add(flat[i] as string, flat[i + 1] as string);
  } while (cursor !== '0');
  return { runId, taskIds: Object.keys(hosts).sort(byTaskOrder), hosts, createdAt: meta.createdAt ?? 0 };
}

/**
 * The meta as stored (Redis is external input): anything else is taken as no meta beyond the
 * run's tasks hash. `taskIds`/`hosts`: written before tasks had a key of their own.
 */
const StoredMetaSchema = z.object({
  createdAt: z.number().int().min(0).optional(),
  taskIds: z.array(z.string()).optional(),
  hosts: z.record(z.string(), z.string().max(260)).optional(),
});

function parsed(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

/** Task ids in run order: record numbers numerically (task lists), then by text (`<i>-<host>`). */
function byTaskOrder(a: string, b: string): number {
  return (Number.parseInt(a, 10) || 0) - (Number.parseInt(b, 10) || 0) || compareText(a, b);
}

function throwFirst(res: Array<[Error | null, unknown]> | null): void {
  const err = res?.find(([e]) => e !== null)?.[0];
  if (err) throw err;
}
