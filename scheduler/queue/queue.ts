/**
 * The producer side of the queue: a run is validated, then enqueued as ONE addBulk with job id
 * `<runId>-<taskId>` into the run's own queue (`run.<runId>`, see runs.ts), so enqueueing the
 * same run twice adds nothing while its jobs are kept, and only workers serving that run (a
 * daemon, its own `gaxx run`, or `gaxx run --resume`) take them. Finished jobs are removed by
 * age and count; a finished run's queue is removed by its owner (`forgetRun`). The producer
 * connection fails fast (REDIS_UNAVAILABLE) instead of buffering commands while Redis is down.
 */
import { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { GaxxError, type TaskSigner } from '../../proto/index.js';
import { unknownFleets } from './fleets.js';
import { indexRun } from './run-feed.js';
import { createRedis, gaxxKey, KEY_PREFIX, redisError, waitReady, type RedisRole, type RedisSettings } from '../redis/redis.js';
import { listRuns as listRunsOf, registerRun, runQueueName, unregisterRun } from './runs.js';
import { DEFAULT_SIGNED_TTL_MS, signTask, type SigningTimes } from './sign.js';
import { jobIdFor, parseRunSpec, type RunSpec, type RunSpecInput, type TaskSpec } from './task.js';

/** How long finished jobs, results and run inputs are kept. */
export const RETENTION = {
  completedAgeS: 24 * 3600,
  completedCount: 100_000,
  failedAgeS: 7 * 24 * 3600,
  failedCount: 100_000,
  resultTtlMs: 24 * 3600 * 1000,
} as const;

/** A run as enqueued. */
export interface EnqueuedRun {
  runId: string;
  taskIds: string[];
  jobIds: string[];
}

/** The producer: a fail-fast connection and the BullMQ queue on it. */
export class TaskQueue {
  private readonly queues = new Map<string, Queue>();
  /** A queue of this process has checked the Redis version (see queueFor). */
  private versionChecked = false;

  private constructor(
    readonly redis: Redis | Cluster,
    /** Whether `close` disconnects `redis` (false: the caller's connection, left open). */
    private readonly owned = true,
  ) {}

  /**
   * The BullMQ queue of one run's jobs. On a fail-fast (producer) connection that is away it
   * throws REDIS_UNAVAILABLE: BullMQ would wait for the connection to be ready again, and a
   * producer's connection reconnects for as long as it is open (redis.ts), so a call on a Redis
   * that never comes back would never end.
   */
  queueFor(runId: string): Queue {
    if (this.redis.status !== 'ready' && !offlineQueue(this.redis))
      throw new GaxxError('REDIS_UNAVAILABLE', `redis is not reachable (connection ${this.redis.status})`);
    let q = this.queues.get(runId);
    if (!q) {
      // Each run has a queue of its own; BullMQ reads Redis's version (INFO, a round trip on
      // the enqueue path) for every one: once per process is enough.
      q = new Queue(runQueueName(runId), { connection: this.redis, prefix: KEY_PREFIX, skipVersionCheck: this.versionChecked });
      q.on('error', () => undefined);
      this.queues.set(runId, q);
    }
    return q;
  }

  /**
   * Connects (REDIS_UNAVAILABLE within `timeoutMs` when Redis is down; CANCELLED at once when
   * `stop` aborts first). `role` 'worker' makes a long-lived process (the daemon) ride out a
   * Redis restart instead of failing fast.
   */
  static async open(settings: RedisSettings, timeoutMs = 5000, role: RedisRole = 'producer', stop?: AbortSignal): Promise<TaskQueue> {
    const redis = createRedis(settings, role);
    redis.on('error', () => undefined); // surfaced through waitReady and command errors
    await waitReady(redis, timeoutMs, settings.display, stop);
    return new TaskQueue(redis);
  }

  /**
   * A queue on `shared` when given: a ready connection the caller keeps, so a command that also
   * reads and writes Redis itself (`gaxx run`) needs one connection, not two; `close` leaves it
   * open. Else a connection of its own (`open`).
   */
  static async openOn(settings: RedisSettings, shared: Redis | Cluster | undefined): Promise<TaskQueue> {
    return shared ? new TaskQueue(shared, false) : TaskQueue.open(settings);
  }

  /**
   * Validates, signs (each task with `signer`, the submitting operator's key, at
   * `opts.signedAtUnixMs`, default now; valid until `opts.expiresAtUnixMs`, default a day later)
   * and enqueues a run; INVALID_ARGUMENT (with dot-paths) before anything is written.
   */
  async enqueueRun(input: RunSpecInput, signer: TaskSigner, opts: SigningTimes = {}): Promise<EnqueuedRun> {
    const run = parseRunSpec(input);
    await this.checkFleets(run);
    const signedAt = opts.signedAtUnixMs ?? Date.now();
    const expiresAt = opts.expiresAtUnixMs ?? signedAt + DEFAULT_SIGNED_TTL_MS;
    const inputs = new Map(Object.entries(run.inputs ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
    let unregistered = false;
    try {
      // First: it throws at once when a producer's Redis is away (nothing is sent then).
      const queue = this.queueFor(run.runId);
      await this.storeInputs(run);
      const taskIds = run.tasks.map((t) => t.taskId);
      const jobIds = taskIds.map((id) => jobIdFor(run.runId, id));
      const jobs = run.tasks.map((t, i) => {
        const stdin = t.input !== undefined ? (inputs.get(t.input) as Buffer) : Buffer.from(t.stdin ?? '', 'base64');
        const unsigned = { ...t, runId: run.runId };
        const data: TaskSpec = { ...unsigned, signed: signTask(unsigned, stdin, signer, expiresAt, signedAt) };
        return {
          name: t.fleet ?? '_agents',
          data,
          opts: {
            jobId: jobIds[i] as string,
            // Job-level attempts cover only unexpected worker errors (e.g. Redis gone while
            // publishing a result); dispatch retries are the worker's own loop.
            attempts: 3,
            backoff: { type: 'exponential', delay: 1000 },
            removeOnComplete: { age: RETENTION.completedAgeS, count: RETENTION.completedCount },
            removeOnFail: { age: RETENTION.failedAgeS, count: RETENTION.failedCount },
          },
        };
      });
      const hosts = Object.fromEntries(run.tasks.map((t) => [t.taskId, 'host' in t.target ? t.target.host : '']));
      // The registry entry, the jobs and the dashboard's listing go out without waiting for one
      // another (one round trip, once this process's first queue has checked Redis's version), in
      // that order: Redis runs one connection's commands in the order they come, so the jobs are
      // never there before their run's entry, and a daemon told of the run by the entry's
      // announcement starts its worker while the jobs are on their way.
      const written = await Promise.allSettled([
        registerRun(this.redis, { runId: run.runId, taskIds, hosts, createdAt: Date.now() }),
        queue.addBulk(jobs),
        indexRun(this.redis, run),
      ]);
      const failed = written.find((w): w is PromiseRejectedResult => w.status === 'rejected');
      if (failed) {
        // Jobs that did land (or land later: a request its bound cut may still be done) would run
        // without their run's entry: taken back. Both go out at once, after the writes on the same
        // connection (Redis runs them in that order), so a Redis that answers nothing holds this
        // one request bound, not two.
        unregistered = true;
        await Promise.all([this.withdraw(jobIds).catch(() => undefined), unregisterRun(this.redis, run.runId).catch(() => undefined)]);
        throw failed.reason;
      }
      this.versionChecked = true;
      return { runId: run.runId, taskIds, jobIds };
    } catch (e) {
      // Best effort (a Redis refusing writes refuses this too): no registry entry without jobs.
      if (!unregistered) await unregisterRun(this.redis, run.runId).catch(() => undefined);
      throw redisError(e, 'enqueue failed');
    }
  }

  private async checkFleets(run: RunSpec): Promise<void> {
    const named = run.tasks.flatMap((t) => (t.fleet ? [t.fleet] : []));
    if (named.length === 0) return;
    let unknown: string[];
    try {
      unknown = await unknownFleets(this.redis, named);
    } catch (e) {
      throw redisError(e, 'fleet lookup failed');
    }
    if (unknown.length === 0) return;
    const issues = run.tasks.flatMap((t, i) =>
      t.fleet && unknown.includes(t.fleet) ? [{ path: `tasks.${i}.fleet`, message: `unknown fleet '${t.fleet}'` }] : [],
    );
    // NOT_FOUND, as the CLI's own check of a fleet is: a fleet registered when a run began may be
    // gone by its next batch (deleted, or Redis lost its data), which is no fault of the task.
    throw new GaxxError(
      'NOT_FOUND',
      `unknown fleet '${unknown[0]}' (${issues[0]?.path}): not registered in Redis (never spawned, deleted since, or Redis lost its data)`,
      { details: { issues } },
    );
  }

  private async storeInputs(run: RunSpec): Promise<void> {
    const entries = Object.entries(run.inputs ?? {});
    if (entries.length === 0) return;
    const tx = this.redis.multi();
    for (const [name, b64] of entries) tx.set(runInputKey(run.runId, name), Buffer.from(b64, 'base64'), 'PX', RETENTION.resultTtlMs);
    await tx.exec();
  }

  /**
   * Removes a run's jobs that no worker has taken yet (waiting or delayed); returns how many.
   * Jobs already running are left to finish (their results are still published).
   */
  async withdraw(jobIds: readonly string[]): Promise<number> {
    return (await this.withdrawIds(jobIds)).length;
  }

  /**
   * Like withdraw, returning the removed job ids. A job some worker took before (then stalled or
   * handed back) is kept even while it waits: its command may be running on an agent, and only a
   * worker taking it again can reach that execution (attach, or Cancel when the run is cancelled).
   */
  async withdrawIds(jobIds: readonly string[]): Promise<string[]> {
    const removed: string[] = [];
    for (const id of jobIds) {
      const job = await this.queueFor(id.slice(0, id.indexOf('-'))).getJob(id);
      if (!job || job.processedOn !== undefined || (job.attemptsStarted ?? 0) > 0) continue;
      const state = await job.getState();
      if (state === 'waiting' || state === 'delayed' || state === 'prioritized') {
        if (
          await job.remove().then(
            () => true,
            () => false,
          )
        )
          removed.push(id);
      }
    }
    return removed;
  }

  /** Jobs by state over `runIds` (every registered run when omitted), for metrics and status. */
  async depth(runIds?: readonly string[]): Promise<Record<string, number>> {
    const total: Record<string, number> = { waiting: 0, active: 0, delayed: 0, prioritized: 0, completed: 0, failed: 0 };
    for (const runId of runIds ?? (await listRunsOf(this.redis))) {
      const counts = await this.queueFor(runId).getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
      for (const [k, n] of Object.entries(counts)) total[k] = (total[k] ?? 0) + n;
    }
    return total;
  }

  /**
   * Forgets a run's queue (forgetRun) once nothing of it is queued or running; true when it did.
   * A worker may still be completing a job whose result it published (a daemon usually is within
   * a millisecond or two): active jobs get up to `activeWaitMs` to finish. Jobs left queued or
   * running stay, for a daemon or `gaxx run --resume` (abandoned.ts expires them in the end).
   * Every finished run's owner calls this: BullMQ's removeOnComplete trims a queue only when a
   * later job of the same queue completes, which never happens for a finished run, so its job
   * hashes (and the queue's own keys, none with a TTL) would stay in Redis for good.
   */
  async forgetWhenIdle(runId: string, activeWaitMs = 3000): Promise<boolean> {
    const q = this.queueFor(runId);
    const left = (): Promise<Record<string, number>> => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'paused', 'waiting-children');
    let counts = await left();
    for (let waited = 0, ms = 2; (counts.active ?? 0) > 0 && waited < activeWaitMs; waited += ms, ms = Math.min(ms * 2, 200)) {
      await new Promise((r) => setTimeout(r, ms));
      counts = await left();
    }
    if (Object.values(counts).some((n) => n > 0)) return false;
    await this.forgetRun(runId);
    return true;
  }

  /** Removes a finished (or withdrawn) run's queue and registry entry; its results stay. */
  async forgetRun(runId: string): Promise<void> {
    const q = this.queueFor(runId);
    await q.obliterate({ force: true });
    await unregisterRun(this.redis, runId);
    this.queues.delete(runId);
    await q.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close().catch(() => undefined)));
    if (this.owned) this.redis.disconnect();
  }
}

/** Whether `client` queues commands while disconnected (a worker's connection) rather than failing them. */
function offlineQueue(client: Redis | Cluster): boolean {
  return client.options.enableOfflineQueue !== false;
}

/** Key of a run's shared input blob. */
export function runInputKey(runId: string, name: string): string {
  return gaxxKey('run', runId, 'input', name);
}
