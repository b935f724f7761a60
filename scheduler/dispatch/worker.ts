/**
 * The BullMQ worker: takes task jobs from the shared queue, dispatches each through the agent
 * pool (see dispatch.ts for retries and exactly-once), publishes its result to the run's stream
 * and completes the job with the result as its return value. Several workers (in one scheduler
 * or many) share the queue; a job whose worker died stalls and is taken again by another, whose
 * re-dispatch reaches the same agent and attaches to or replays the first execution.
 *
 * Draining (`drain`): stop taking jobs, let in-flight ones finish for a grace period, then hand
 * the rest back to the queue (moved to delayed for "now"), so another worker picks them up
 * at once and attaches to the executions still running on the agents.
 */
import { setMaxListeners } from 'node:events';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { AgentPool, type AgentConnector, type AgentEndpoint } from './agent-pool.js';
import type { BreakerOptions } from './breaker.js';
import { CancelWatch } from '../queue/cancel.js';
import { dispatchTask, type DispatchContext, type JobHandle } from './dispatch.js';
import { fleetAgents } from '../queue/fleets.js';
import { LiveOutput } from '../queue/live.js';
import type { SchedulerMetrics } from '../daemon/metrics.js';
import { QUEUE_NAME, runInputKey } from '../queue/queue.js';
import { createRedis, KEY_PREFIX, type RedisSettings } from '../redis/redis.js';
import { publishResult, type TaskResult } from '../queue/results.js';
import { checkJobSignature } from '../queue/sign.js';
import { jobIdFor, parseTaskSpec, RUN_ID, TASK_ID, type TaskSpec } from '../queue/task.js';
import { GaxxError, isGaxxError } from '../../proto/index.js';

/** Minimal logger shape (pino's). */
export interface WorkerLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface SchedulerWorkerOptions {
  settings: RedisSettings;
  connect: AgentConnector;
  concurrency?: number;
  /** BullMQ lock: a dead worker's jobs are taken again after about this long. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  breaker?: BreakerOptions;
  backoffMaxMs?: number;
  metrics?: SchedulerMetrics;
  log?: WorkerLog;
}

const FLEET_CACHE_MS = 2000;

/** A running worker. */
export class SchedulerWorker {
  readonly pool: AgentPool;
  private readonly abort = new AbortController();
  private readonly fleetCache = new Map<string, { at: number; agents: Promise<AgentEndpoint[]> }>();
  private readonly cancels: CancelWatch;
  private worker!: Worker<TaskSpec, TaskResult>;
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly opts: SchedulerWorkerOptions,
    readonly redis: Redis | Cluster,
  ) {
    this.cancels = new CancelWatch(redis);
    this.pool = new AgentPool(opts.connect, {
      breaker: opts.breaker,
      onBreaker: (address, state) => opts.log?.info({ agent: address, breaker: state }, 'agent breaker changed'),
    });
  }

  /** Connects and starts taking jobs. */
  static start(opts: SchedulerWorkerOptions): SchedulerWorker {
    const redis = createRedis(opts.settings, 'worker');
    redis.on('error', (e: Error) => opts.log?.warn({ err: e.message }, 'redis connection error'));
    const w = new SchedulerWorker(opts, redis);
    // Every in-flight dispatch listens on the one drain signal.
    setMaxListeners(0, w.abort.signal);
    const ctx: DispatchContext = { pool: w.pool, metrics: opts.metrics, resolve: (s) => w.resolve(s), backoffMaxMs: opts.backoffMaxMs };
    w.worker = new Worker<TaskSpec, TaskResult>(QUEUE_NAME, (job, token) => w.process(ctx, job, token), {
      connection: redis,
      prefix: KEY_PREFIX,
      concurrency: opts.concurrency ?? 64,
      lockDuration: opts.lockDurationMs ?? 30_000,
      stalledInterval: opts.stalledIntervalMs ?? opts.lockDurationMs ?? 30_000,
      // A scheduler crash stalls its jobs; they must come back, not fail.
      maxStalledCount: 1000,
    });
    w.worker.on('error', (e) => opts.log?.warn({ err: e.message }, 'worker error'));
    w.worker.on('failed', (job, e) => opts.log?.error({ job: job?.id, err: e.message }, 'job failed'));
    opts.metrics?.attach({ breakers: () => w.pool.states(), inflight: () => w.pool.inflightTotal() });
    return w;
  }

  /** Resolves once the worker is connected and fetching. */
  async ready(): Promise<void> {
    await this.worker.waitUntilReady();
  }

  private async process(ctx: DispatchContext, job: Job<TaskSpec, TaskResult>, token: string | undefined): Promise<TaskResult> {
    let spec: TaskSpec;
    try {
      spec = parseTaskSpec(job.data);
      // The queue is not a trust root: unsigned, altered or expired work is never dispatched.
      checkJobSignature(spec);
      // The job id is the exec task id the agents see: a signed task copied under another id is a replay.
      if (job.id !== jobIdFor(spec.runId, spec.taskId)) throw new GaxxError('TASK_ID_MISMATCH', `job ${job.id} carries task ${spec.runId}-${spec.taskId}`);
    } catch (e) {
      // Enqueue validates and signs, so this is data written around it: never dispatched, reported if possible.
      this.opts.log?.error({ job: job.id, code: isGaxxError(e) ? e.code : undefined, err: (e as Error).message }, 'job refused');
      await this.reportInvalid(job, e as Error);
      throw new UnrecoverableError((e as Error).message);
    }
    const watch = this.cancels.track(spec.runId);
    const live = new LiveOutput(this.redis, spec.runId, spec.taskId, spec.outputCapBytes);
    let done;
    try {
      if (await this.cancels.check(spec.runId)) watch.controller.abort();
      const handle: JobHandle = {
        id: job.id as string,
        enqueuedAt: job.timestamp,
        signal: this.abort.signal,
        cancel: watch.controller.signal,
        live,
        takenBefore: (job.attemptsStarted ?? 0) > 1 || (job.stalledCounter ?? 0) > 0 || spec.dispatch !== undefined,
        saveDispatch: (d) => job.updateData({ ...spec, dispatch: d }),
        loadInput: (name) => this.redis.getBuffer(runInputKey(spec.runId, name)),
      };
      done = await dispatchTask(ctx, spec, handle);
    } catch (e) {
      if (!this.abort.signal.aborted) throw e;
      // Draining: hand the job back so another worker takes it now (and attaches on the agent).
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    } finally {
      watch.done();
      // A task handed back or failed still publishes what it streamed (display only).
      if (done === undefined) void live.close();
    }
    const streamed = await live.close();
    const fresh = await publishResult(this.redis, done.result, done.output, streamed.exact ? streamed.bytes : undefined);
    if (fresh) this.opts.metrics?.tasks.inc({ outcome: done.result.outcome });
    else this.opts.metrics?.published.inc();
    return done.result;
  }

  /** Cancels this worker's in-flight tasks of `runId` at once (the flag in Redis reaches the others). */
  cancelRun(runId: string): void {
    this.cancels.cancelRun(runId);
  }

  private async reportInvalid(job: Job, e: Error): Promise<void> {
    const d = (job.data ?? {}) as { runId?: unknown; taskId?: unknown };
    if (typeof d.runId !== 'string' || !RUN_ID.test(d.runId) || typeof d.taskId !== 'string' || !TASK_ID.test(d.taskId)) return;
    const result: TaskResult = {
      runId: d.runId, taskId: d.taskId, host: '', outcome: 'error', exitCode: null, signal: null, reason: isGaxxError(e) ? e.code : 'INVALID_ARGUMENT', error: e.message,
      durationMs: 0, stdoutBytes: 0, stderrBytes: 0, truncated: false, attempts: 0, attached: false, replayed: false, finishedAt: new Date().toISOString(),
    };
    if (await publishResult(this.redis, result, []).catch(() => false)) this.opts.metrics?.tasks.inc({ outcome: 'error' });
  }

  private async resolve(spec: TaskSpec): Promise<{ endpoints: AgentEndpoint[]; pinned?: string }> {
    const host = 'host' in spec.target ? spec.target.host : undefined;
    if (spec.agents) return { endpoints: spec.agents.map((address) => ({ address })), ...(host ? { pinned: host } : {}) };
    const fleet = spec.fleet as string;
    let hit = this.fleetCache.get(fleet);
    if (!hit || Date.now() - hit.at > FLEET_CACHE_MS) {
      hit = { at: Date.now(), agents: fleetAgents(this.redis, fleet).then((as) => as.map((a) => ({ address: a.address, expect: { fleet, host: a.host } }))) };
      this.fleetCache.set(fleet, hit);
    }
    const endpoints = await hit.agents;
    const pinned = host === undefined ? undefined : endpoints.find((e) => e.expect?.host === host)?.address;
    return { endpoints, ...(pinned ? { pinned } : {}) };
  }

  /**
   * Stops taking jobs; waits up to `graceMs` for in-flight ones, then hands the rest back.
   * Idempotent.
   */
  drain(graceMs = 10_000): Promise<void> {
    this.closed ??= (async () => {
      const closing = this.worker.close();
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([closing.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
      clearTimeout(timer);
      if (late) {
        this.abort.abort();
        await closing;
      }
      this.cancels.stop();
      this.pool.close();
      this.redis.disconnect();
    })();
    return this.closed;
  }
}
