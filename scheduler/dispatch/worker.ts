/**
 * The BullMQ worker: takes task jobs from the runs' queues, dispatches each through the agent
 * pool (see dispatch.ts for retries and exactly-once), publishes its result to the run's stream
 * and completes the job with the result as its return value. With `runId` it serves that run
 * only (the in-process worker of `gaxx run`, or `--resume`); without, every registered run
 * (the daemon; see run-discovery.ts), one BullMQ worker per run queue, each started on a blocking
 * connection the daemon readied ahead (spare-connection.ts). Several workers share a
 * run; a job whose worker died stalls and is taken again by another, whose re-dispatch reaches
 * the same agent and attaches to or replays the first execution.
 *
 * Draining (`drain`): stop taking jobs, let in-flight ones finish for a grace period, then hand
 * the rest back to the queue (moved to delayed for "now"), so another worker picks them up
 * at once and attaches to the executions still running on the agents.
 */
import { setMaxListeners } from 'node:events';
import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { AgentPool, agentKey, fleetEndpoint, type AgentConnector, type AgentEndpoint } from './agent-pool.js';
import type { BreakerOptions } from './breaker.js';
import type { RetryPolicy } from './retry-policy.js';
import { CancelWatch } from '../queue/cancel.js';
import { dispatchTask, type DispatchContext, type JobHandle } from './dispatch.js';
import { fleetAgents } from '../queue/fleets.js';
import { LiveOutput, liveShownBefore, publishNote } from '../queue/live.js';
import type { SchedulerMetrics } from '../daemon/metrics.js';
import { runInputKey } from '../queue/queue.js';
import { delayedDueWithin, runExists, runQueueName } from '../queue/runs.js';
import { backOffOnErrors } from './fetch-backoff.js';
import { QuietLog } from './quiet-log.js';
import { MAX_RUNS, RunDiscovery } from './run-discovery.js';
import { keepSpareConnection, type SpareConnection } from './spare-connection.js';
import { createRedis, gaxxKey, KEY_PREFIX, type RedisSettings } from '../redis/redis.js';
import { publishResult, taskResult, type TaskResult } from '../queue/results.js';
import { checkJobSignature } from '../queue/sign.js';
import { ResultWrites } from './result-writes.js';
import { failedJobResult } from '../queue/failed-jobs.js';
import { JobLocks, LockLost, type JobLock } from '../queue/job-lock.js';
import { refusalReason } from '../queue/write-health.js';
import { jobIdFor, parseTaskSpec, RUN_ID, TASK_ID, type TaskSpec } from '../queue/task.js';
import { bounded } from '../queue/run-landing.js';
import { GaxxError, isGaxxError } from '../../proto/index.js';

/**
 * How often a worker looks for jobs whose lock expired (their worker died or stalled). BullMQ
 * takes such a job back on the second look after its lock expired: at the lock's own interval
 * (30 s) that was 60-90 s after the worker died; looking every 5 s makes it the lock's 30 s and
 * at most 10 s more. A look is one script over the run's active jobs: cheap.
 */
const STALLED_CHECK_MS = 5000;

/** Minimal logger shape (pino's). */
export interface WorkerLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface SchedulerWorkerOptions {
  settings: RedisSettings;
  /** Serve this run only; without it, every registered run. */
  runId?: string;
  connect: AgentConnector;
  concurrency?: number;
  /** BullMQ lock: a dead worker's jobs are taken again after about this long. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  breaker?: BreakerOptions;
  /** An agent no task names is forgotten (no more probes) after this long (default FORGET_UNUSED_MS, agent-pool.ts). */
  forgetAgentsMs?: number;
  /** Output a run may store, live and final together (default RUN_OUTPUT_BUDGET_BYTES). */
  runOutputBudgetBytes?: number;
  /** Serving every run: the most runs served at once (default MAX_RUNS, run-discovery.ts). */
  maxRuns?: number;
  /** Overrides of the retry policy (retry-policy.ts), e.g. `agentGoneMs`. */
  policy?: Partial<RetryPolicy>;
  metrics?: SchedulerMetrics;
  log?: WorkerLog;
  /**
   * Redis refused a result write of `runId` (`refused`: its reason), or took one again
   * (undefined): the in-process worker tells the run it serves, whose wait is bounded by it.
   */
  onWrites?: (runId: string, refused: string | undefined) => void;
}

const FLEET_CACHE_MS = 2000;

/** After a drain's grace, how long the jobs still in flight get to be handed back to the queue. */
const HAND_BACK_MS = 5000;

/** A delayed job due this soon is work (retries wait seconds); one due later holds no run slot. */
const DELAYED_SOON_MS = 5 * 60_000;

/** An agent that refuses tasks because it cannot take work is logged at most this often, per reason. */
const REFUSAL_LOG_MS = 60_000;

/** The most notes said once (JobHandle.note's `once`) a run keeps track of: past it, such notes are dropped. */
const ONCE_NOTES_PER_RUN = 1000;

/** Jobs a worker runs at once unless told otherwise. */
export const WORKER_CONCURRENCY = 64;

/**
 * Closes a run's BullMQ worker. Closing one whose connection is still being set up makes BullMQ
 * emit an error with no listener left, which ends the process: it is let finish connecting
 * first (a worker started for a run that turned out to be finished, as `gaxx runs wait` and
 * `gaxx run --resume` start one, is closed at once).
 */
async function closeWorker(bw: Worker<TaskSpec, TaskResult>): Promise<void> {
  await bw.waitUntilReady().catch(() => undefined);
  await bw.close().catch(() => undefined);
}

/** A running worker. */
export class SchedulerWorker {
  readonly pool: AgentPool;
  private readonly abort = new AbortController();
  private readonly fleetCache = new Map<string, { at: number; agents: Promise<AgentEndpoint[]> }>();
  private readonly cancels: CancelWatch;
  private readonly workers = new Map<string, Worker<TaskSpec, TaskResult>>();
  private readonly quiet: QuietLog;
  /** Agents that refuse tasks because they cannot take work: once per agent and reason a minute. */
  private readonly refusals: QuietLog;
  /** Per run, the keys of the notes said once (JobHandle.note). */
  private readonly saidOnce = new Map<string, Set<string>>();
  private discovery: RunDiscovery | undefined;
  /** A daemon's next run's blocking connection, made ready ahead (spare-connection.ts). */
  private spare: SpareConnection | undefined;
  private discovering: Promise<void> | undefined;
  private ctx!: DispatchContext;
  private closed: Promise<void> | undefined;
  private writes!: ResultWrites;
  private locks!: JobLocks;

  private constructor(
    private readonly opts: SchedulerWorkerOptions,
    readonly redis: Redis | Cluster,
  ) {
    this.cancels = new CancelWatch(redis);
    this.quiet = new QuietLog(opts.log);
    this.refusals = new QuietLog(opts.log, REFUSAL_LOG_MS);
    this.pool = new AgentPool(opts.connect, {
      breaker: opts.breaker,
      ...(opts.forgetAgentsMs !== undefined ? { forgetUnusedMs: opts.forgetAgentsMs } : {}),
      onBreaker: (agent, state) => opts.log?.info({ agent: agent.address, ...agent.expect, breaker: state }, 'agent breaker changed'),
      // Every refused dispatch says so; the log says it once a minute per agent and reason.
      onRefused: (agent, r) =>
        this.refusals.warn(
          'agent refuses new tasks: tasks that may run elsewhere go there, the others wait for it',
          r.message,
          { agent: agent.address, ...agent.expect, refusal: r.kind },
          `${agentKey(agent)}\u0000${r.kind}`,
        ),
    });
  }

  /** Connects and starts taking jobs. */
  static start(opts: SchedulerWorkerOptions): SchedulerWorker {
    const redis = createRedis(opts.settings, 'worker');
    const w = new SchedulerWorker(opts, redis);
    redis.on('error', (e: Error) => w.quiet.warn('redis connection error', e.message));
    // Every in-flight dispatch listens on the one drain signal.
    setMaxListeners(0, w.abort.signal);
    w.writes = new ResultWrites({ log: opts.log, onWrites: opts.onWrites, retryForMs: opts.lockDurationMs ?? 30_000, signal: w.abort.signal });
    w.ctx = { pool: w.pool, metrics: opts.metrics, resolve: (s) => w.resolve(s), policy: opts.policy };
    w.locks = new JobLocks(redis, (lock) =>
      opts.log?.warn({ job: lock.jobId }, 'lost the lock on a job: the worker that has it now goes on with it, this one stops'),
    );
    if (opts.runId !== undefined) w.serve(opts.runId);
    else {
      w.spare = keepSpareConnection(redis);
      const maxRuns = opts.maxRuns ?? MAX_RUNS;
      w.discovery = new RunDiscovery({
        redis,
        maxRuns,
        onRun: (runId) => void w.serve(runId),
        onGone: (runId) => void w.unserve(runId),
        hasWork: (runId) => w.hasWork(runId),
        exists: (runId) => runExists(redis, runId),
        forget: (runId) => w.forgetIdleRun(runId),
        onError: (e) => w.quiet.warn('run discovery error', e.message),
        onInvalid: (runId) =>
          w.quiet.warn('run discovery: ignored a run id that is not one', 'run ids are 1-40 characters of [A-Za-z0-9_.]', { runId: runId.slice(0, 64) }),
        onFull: (waiting) => w.quiet.warn('run cap reached: runs wait for a slot', `at most ${maxRuns} runs are served at once`, { waiting, maxRuns }),
      });
      w.discovering = w.discovery.start();
      w.discovering.catch((e: Error) => w.quiet.warn('run discovery error', e.message));
    }
    opts.metrics?.attach({ breakers: () => w.pool.breakers(), inflight: () => w.pool.inflightTotal(), runs: () => w.workers.size });
    return w;
  }

  /** The BullMQ worker of one run's queue (started on first use). */
  private serve(runId: string): Worker<TaskSpec, TaskResult> {
    let bw = this.workers.get(runId);
    if (bw) return bw;
    // Locks: a worker that stalls (SIGSTOP, a long GC) or dies loses its jobs to another worker
    // once their locks expire; the re-dispatch attaches on the agent (task-dispatch.ts), and the
    // stalled worker, once it runs again, finds its locks lost and leaves those jobs (job-lock.ts).
    // Expired locks are looked for every STALLED_CHECK_MS (see there), by the daemon too.
    // Every step for a job is taken only while this worker holds its lock (queue/job-lock.ts).
    const processor = (job: Job<TaskSpec, TaskResult>, token?: string): Promise<TaskResult> =>
      this.tracked(() => this.process(this.ctx, job, token, this.locks.take(job.id as string, (bw as Worker).toKey(job.id as string), token ?? '')));
    bw = new Worker<TaskSpec, TaskResult>(runQueueName(runId), processor, {
      connection: this.redis,
      prefix: KEY_PREFIX,
      concurrency: this.opts.concurrency ?? WORKER_CONCURRENCY,
      lockDuration: this.opts.lockDurationMs ?? 30_000,
      stalledInterval: this.opts.stalledIntervalMs ?? Math.min(this.opts.lockDurationMs ?? 30_000, STALLED_CHECK_MS),
      // A scheduler crash stalls its jobs; they must come back, not fail.
      maxStalledCount: 1000,
    });
    // Its cancel flag is asked now, while the worker connects, and not on its first task's path
    // (CancelWatch.check keeps an answer for a poll interval, as it does for a run's later tasks).
    void this.cancels.check(runId);
    backOffOnErrors(bw, (e) => this.quiet.warn('worker error', e.message));
    // A lock BullMQ could not renew may be another worker's now: that job's work stops at once.
    bw.on('lockRenewalFailed', (ids) => this.locks.renewalFailed(ids));
    bw.on('failed', (job, e) => {
      this.opts.log?.error({ job: job?.id, err: e.message }, 'job failed');
      // Failed for good (not to be tried again): its task must still end with a result.
      if (job && (job.finishedOn !== undefined || job.attemptsMade >= (job.opts.attempts ?? 1))) void this.settleFailed(job, e);
    });
    this.workers.set(runId, bw);
    return bw;
  }

  /** Whether the note said once under `key` for `runId` is said now (the first time, while there is room to remember it). */
  private firstSaid(runId: string, key: string): boolean {
    let said = this.saidOnce.get(runId);
    if (!said) this.saidOnce.set(runId, (said = new Set()));
    if (said.has(key) || said.size >= ONCE_NOTES_PER_RUN) return false;
    said.add(key);
    return true;
  }

  private async unserve(runId: string): Promise<void> {
    const bw = this.workers.get(runId);
    this.workers.delete(runId);
    this.saidOnce.delete(runId);
    if (bw) await closeWorker(bw);
  }

  /** A stale run with nothing left to run: stop serving it and remove its queue. */
  private async forgetIdleRun(runId: string): Promise<void> {
    await this.unserve(runId);
    const q = new Queue(runQueueName(runId), { connection: this.redis, prefix: KEY_PREFIX });
    q.on('error', () => undefined);
    try {
      await q.waitUntilReady();
      await q.obliterate({ force: true });
      await this.redis.zrem(gaxxKey('runs'), runId);
    } finally {
      await q.close().catch(() => undefined);
    }
  }

  /**
   * Whether a run has jobs to run now or soon (or running): what holds a slot of --max-runs. A
   * delayed job counts when it is due within DELAYED_SOON_MS: one planted far in the future (by
   * anyone who can write to Redis) holds none.
   */
  private async hasWork(runId: string): Promise<boolean> {
    const q = new Queue(runQueueName(runId), { connection: this.redis, prefix: KEY_PREFIX });
    q.on('error', () => undefined);
    try {
      await q.waitUntilReady();
      const c = await q.getJobCounts('waiting', 'active', 'prioritized');
      return Object.values(c).some((n) => n > 0) || (await delayedDueWithin(this.redis, runId, DELAYED_SOON_MS));
    } finally {
      await q.close().catch(() => undefined);
    }
  }

  /** Resolves once the worker is connected and fetching (a daemon: once it knows the runs). */
  async ready(): Promise<void> {
    await this.discovering;
    await Promise.all([...this.workers.values()].map((bw) => bw.waitUntilReady()));
  }

  /** Runs one job's processing, with the event-loop delay sampled meanwhile (metrics.loop). */
  private async tracked<T>(run: () => Promise<T>): Promise<T> {
    const loop = this.opts.metrics?.loop;
    loop?.started();
    try {
      return await run();
    } finally {
      loop?.ended();
    }
  }

  /**
   * Runs one job while holding it (`lock`). A job found to be another worker's (its lock expired
   * while this worker stalled, or was taken over) is left to that worker: nothing more is done or
   * written for it here, and BullMQ is told it was moved (DelayedError), not that it failed.
   */
  private async process(ctx: DispatchContext, job: Job<TaskSpec, TaskResult>, token: string | undefined, lock: JobLock): Promise<TaskResult> {
    try {
      return await this.processHeld(ctx, job, token, lock);
    } catch (e) {
      if (e instanceof LockLost || lock.lost) {
        lock.lose();
        throw new DelayedError();
      }
      throw e;
    } finally {
      this.locks.release(lock);
    }
  }

  private async processHeld(ctx: DispatchContext, job: Job<TaskSpec, TaskResult>, token: string | undefined, lock: JobLock): Promise<TaskResult> {
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
    const takenBefore = (job.attemptsStarted ?? 0) > 1 || (job.stalledCounter ?? 0) > 0 || spec.dispatch !== undefined;
    // Taken over: the live view goes on from what earlier dispatches showed (unknown: it stays closed).
    const shownBefore = takenBefore ? await liveShownBefore(this.redis, spec.runId, spec.taskId).catch(() => -1) : 0;
    const watch = this.cancels.track(spec.runId);
    const live = new LiveOutput(this.redis, spec.runId, spec.taskId, spec.outputCapBytes, { budgetBytes: this.opts.runOutputBudgetBytes, shownBefore });
    let done;
    // The job's work stops when the worker drains or its lock on the job is lost.
    const stop = new AbortController();
    const onStop = (): void => stop.abort();
    this.abort.signal.addEventListener('abort', onStop, { once: true });
    lock.signal.addEventListener('abort', onStop, { once: true });
    // A stop that came first is no event: a draining worker's BullMQ fetch still under way can
    // hand it a job (the one it just handed back, too), which it must hand back at once rather
    // than run on with nothing to stop it (its drain would wait for that job's end).
    if (this.abort.signal.aborted || lock.signal.aborted) onStop();
    try {
      if (await this.cancels.check(spec.runId)) watch.controller.abort();
      const handle: JobHandle = {
        id: job.id as string,
        enqueuedAt: job.timestamp,
        signal: stop.signal,
        cancel: watch.controller.signal,
        live,
        note: (text, once) => {
          if (once === undefined || this.firstSaid(spec.runId, once)) void publishNote(this.redis, spec.runId, spec.taskId, text);
        },
        takenBefore,
        // The spec as this worker read it is the job's data while it holds the lock (job-lock.ts);
        // the job in hand follows (a job that fails for good names its placement from it).
        saveDispatch: async (d) => {
          const data = { ...spec, dispatch: d };
          await lock.save(data);
          job.data = data;
        },
        hold: () => lock.hold(),
        loadInput: (name) => this.redis.getBuffer(runInputKey(spec.runId, name)),
      };
      if (stop.signal.aborted) throw new Error('stopped before its dispatch');
      done = await dispatchTask(ctx, spec, handle);
    } catch (e) {
      if (e instanceof LockLost || lock.lost || !this.abort.signal.aborted) throw e;
      // Draining: hand the job back so another worker takes it now (and attaches on the agent).
      // BullMQ moves it only with this worker's token: a job whose lock is gone is left as it is.
      await job.moveToDelayed(Date.now(), token).catch(async (err: unknown) => {
        if (await lock.verify()) throw err;
      });
      throw new DelayedError();
    } finally {
      this.abort.signal.removeEventListener('abort', onStop);
      lock.signal.removeEventListener('abort', onStop);
      watch.done();
      // A task handed back or failed still publishes what it streamed (display only).
      if (done === undefined) void live.close();
      // Nothing else in flight: a quiet moment to ready the next run's connection.
      if (this.pool.inflightTotal() === 0) this.spare?.refill();
    }
    const streamed = await live.close();
    // Output streamed live exactly and completely is not stored a second time.
    const total = done.output.reduce((n, c) => n + c.data.length, 0);
    const outputIsLive = streamed.exact && total > 0 && streamed.bytes === total;
    const { result, output } = done;
    const fresh = await this.writes
      .publish(spec.runId, () =>
        publishResult(this.redis, result, output, streamed.exact ? streamed.bytes : undefined, {
          outputIsLive,
          budgetBytes: this.opts.runOutputBudgetBytes,
          lock: lock.ref,
        }),
      )
      .catch((e: unknown) => this.lastChance(job, result, e, lock));
    if (fresh) this.opts.metrics?.tasks.inc({ outcome: done.result.outcome });
    else this.opts.metrics?.published.inc();
    return done.result;
  }

  /**
   * The result write of a job's last attempt was refused (`e`) for as long as it was tried: its
   * real end is published without its output (a write Redis may take where the whole was
   * refused), so the run learns how the command ended. Any other failure, or a refusal of this
   * write too, is thrown: the job fails (see the 'failed' handler).
   */
  private async lastChance(job: Job<TaskSpec, TaskResult>, result: TaskResult, e: unknown, lock: JobLock): Promise<boolean> {
    const refused = refusalReason(e);
    if (refused === undefined || job.attemptsMade + 1 < (job.opts.attempts ?? 1) || this.abort.signal.aborted) throw e;
    const kept: TaskResult = {
      ...result,
      truncated: true,
      outputLost: result.stdoutBytes + result.stderrBytes > 0,
      error: [result.error, `output not stored: Redis refused the result write (${refused})`].filter(Boolean).join('; '),
    };
    return publishResult(this.redis, kept, [], undefined, { lock: lock.ref }).catch((again: unknown) => Promise.reject(again instanceof LockLost ? again : e));
  }

  /**
   * A job failed for good (its attempts ran out, or it was refused): its task gets a result saying
   * so when it has none, else its run would wait for it for ever (failed-jobs.ts; a reader of the
   * run publishes it too, when this write is refused).
   */
  private async settleFailed(job: Job<TaskSpec, TaskResult>, e: Error): Promise<void> {
    const runId = typeof job.data?.runId === 'string' ? job.data.runId : '';
    const taskId = job.id?.slice(runId.length + 1) ?? '';
    if (!RUN_ID.test(runId) || job.id !== jobIdFor(runId, taskId)) return;
    const d = job.data as Partial<TaskSpec>;
    const host = d.dispatch?.placedOn ?? (d.target && 'host' in d.target ? d.target.host : '');
    const r = failedJobResult(runId, { taskId, failedReason: job.failedReason ?? e.message, attemptsMade: job.attemptsMade, taken: true, host });
    if (await this.writes.publish(runId, () => publishResult(this.redis, r, [])).catch(() => false)) this.opts.metrics?.tasks.inc({ outcome: r.outcome });
  }

  /** Cancels this worker's in-flight tasks of `runId` at once (the flag in Redis reaches the others). */
  cancelRun(runId: string): void {
    this.cancels.cancelRun(runId);
  }

  private async reportInvalid(job: Job, e: Error): Promise<void> {
    const d = (job.data ?? {}) as { runId?: unknown; taskId?: unknown };
    if (typeof d.runId !== 'string' || !RUN_ID.test(d.runId) || typeof d.taskId !== 'string' || !TASK_ID.test(d.taskId)) return;
    const result = taskResult(
      { runId: d.runId, taskId: d.taskId, host: '', outcome: 'error', reason: isGaxxError(e) ? e.code : 'INVALID_ARGUMENT' },
      { error: e.message },
    );
    if (await publishResult(this.redis, result, []).catch(() => false)) this.opts.metrics?.tasks.inc({ outcome: 'error' });
  }

  private async resolve(spec: TaskSpec): Promise<{ endpoints: AgentEndpoint[]; pinned?: AgentEndpoint }> {
    const host = 'host' in spec.target ? spec.target.host : undefined;
    if (spec.agents) {
      const endpoints = spec.agents.map((address) => ({ address }));
      const pinned = host === undefined ? undefined : endpoints.find((e) => e.address === host);
      return { endpoints, ...(pinned ? { pinned } : {}) };
    }
    const fleet = spec.fleet as string;
    let hit = this.fleetCache.get(fleet);
    if (!hit || Date.now() - hit.at > FLEET_CACHE_MS) {
      hit = { at: Date.now(), agents: fleetAgents(this.redis, fleet).then((as) => as.map((a) => fleetEndpoint(fleet, a))) };
      this.fleetCache.set(fleet, hit);
    }
    const endpoints = await hit.agents;
    // The host's own endpoint, not the first at its address: a fleet record may name one address twice.
    const pinned = host === undefined ? undefined : endpoints.find((e) => e.expect?.host === host);
    return { endpoints, ...(pinned ? { pinned } : {}) };
  }

  /**
   * Stops taking jobs; waits up to `graceMs` for in-flight ones, then hands the rest back, for
   * at most HAND_BACK_MS: a Redis that does not answer (a hung server) cannot take them back, and
   * the drain ends anyway (warned; their locks expire and a scheduler takes them again), leaving
   * its connections to them (closed under the jobs' pending result writes, those writes kept an
   * in-process worker's process busy without end).
   * Idempotent.
   */
  drain(graceMs = 10_000): Promise<void> {
    this.closed ??= (async () => {
      this.discovery?.stop();
      const closing = Promise.all([...this.workers.values()].map(closeWorker)).then(() => true);
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([closing.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
      clearTimeout(timer);
      if (late) {
        this.abort.abort();
        if (!(await bounded(closing, HAND_BACK_MS))) {
          this.opts.log?.warn(
            { handBackMs: HAND_BACK_MS },
            'the jobs in flight were not handed back (Redis did not answer): their locks expire, and a scheduler takes them again',
          );
          return;
        }
      }
      this.cancels.stop();
      this.pool.close();
      this.spare?.close();
      this.redis.disconnect();
    })();
    return this.closed;
  }
}
