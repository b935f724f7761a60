/**
 * Runs found through the run index, from any process: attach to a run and get every result
 * (`gaxx runs wait`), read its stored results (`gaxx runs show`), cancel it (`gaxx runs cancel`).
 *
 * Attaching reads the run's stream from its start, so a run whose `gaxx run` died is followed
 * to its end: the tasks it had enqueued still run (a daemon, or a worker started here when no
 * daemon heartbeats, takes them; a dead worker's tasks come back after their lock expires). A
 * run whose submitter died before enqueueing all its input ends `interrupted` once the tasks it
 * did enqueue have results.
 */
import type { Cluster, Redis } from 'ioredis';
import { compareText, GaxxError } from '../../proto/index.js';
import type { AgentConnector } from '../dispatch/agent-pool.js';
import { SchedulerWorker } from '../dispatch/worker.js';
import { schedulerAlive } from '../daemon/daemon.js';
import { jobIdFor } from './task.js';
import { isCancelled, requestCancel } from './cancel.js';
import { followRun, type AcceptResults, type FollowHandlers } from './follow.js';
import { goneMsOf, keepFollowing, landEndRecord, mustLand } from './run-landing.js';
import { loadRunMeta, runTasksKey, taskRecords, type RunMeta } from './runs.js';
import { TaskQueue } from './queue.js';
import { allPublished, publishResult, resultAtWaitEnd, runDoneKey, type TaskResult } from './results.js';
import {
  countOutcome,
  getRunRecord,
  readRunRecord,
  RUN_INDEX_TTL_MS,
  submitterAlive,
  updateRunRecord,
  type OutcomeCounts,
  type RunRecord,
  type RunState,
} from './run-index.js';
import { syntheticResult } from './stream-run.js';
import { readResult, type IgnoredHandler } from './stored-result.js';
import { endedBy, endsWaitEarly, WriteHealth, type EndedEarly } from './write-health.js';
import { failedAtWaitEnd } from './failed-jobs.js';
import type { RedisSettings } from '../redis/redis.js';

/** A run's record; NOT_FOUND, or FAILED_PRECONDITION when what Redis holds is not a valid record. */
export async function requireRun(redis: Redis | Cluster, runId: string): Promise<RunRecord> {
  const read = await readRunRecord(redis, runId);
  if (!read)
    throw new GaxxError(
      'NOT_FOUND',
      `no run '${runId}' (unknown, kept no more: ${RUN_INDEX_TTL_MS / 86_400_000} days after its last change, or lost with Redis's data)`,
    );
  if (!read.ok) throw new GaxxError('FAILED_PRECONDITION', `run '${runId}': its record in Redis is not valid (${read.why})`);
  return read.record;
}

/**
 * Whether a follower has seen the whole run, given its record. A run that failed (its input could
 * not be read) is whole once what it enqueued has results: the rest never will be.
 */
export function runComplete(rec: RunRecord, finished: number, now = Date.now()): RunState | undefined {
  if (rec.total !== null && finished >= rec.total) return rec.state === 'running' ? 'done' : rec.state;
  if (rec.state === 'failed' && finished >= rec.enqueued) return 'failed';
  if (rec.total === null && !submitterAlive(rec, now) && finished >= rec.enqueued) return 'interrupted';
  return undefined;
}

/**
 * Whether run `runId` has ended: every task it will have has its result (runComplete on its
 * record: its input all read, or its submitter gone). A run without a record (one enqueued
 * without the CLI) by the results of `taskIds`, all it has.
 */
export async function runHasEnded(redis: Redis | Cluster, runId: string, taskIds: readonly string[]): Promise<boolean> {
  const rec = await getRunRecord(redis, runId);
  if (!rec) return allPublished(redis, runId, taskIds);
  return runComplete(rec, await redis.hlen(runDoneKey(runId))) !== undefined;
}

/**
 * A recorded run as it stands: one still `running` whose submitter is gone (no heartbeat for
 * PRODUCER_STALE_MS) and whose tasks all have results is over, though nobody followed it to its
 * end (its gaxx run was killed, or left at a second Ctrl-C): `cancelled` when its cancel flag is
 * set, `interrupted` when its input was never read to the end (no total), else `done`, with the
 * counts of its stored results. The settled state is written back (best effort), so it is
 * reckoned once. A cancelled one is shown cancelled even before all its results are in.
 */
export async function settleRunRecord(redis: Redis | Cluster, rec: RunRecord, now = Date.now()): Promise<RunRecord & { done?: number }> {
  if (rec.state !== 'running') return rec;
  // A running run's counts are written when it ends: how many results it has so far is its done hash's size.
  const done = await redis.hlen(runDoneKey(rec.runId));
  if (submitterAlive(rec, now)) return { ...rec, done };
  const want = rec.total ?? rec.enqueued;
  const complete = want > 0 && done >= want;
  const cancelled = await isCancelled(redis, rec.runId);
  if (!complete && !cancelled) return { ...rec, done };
  const counts: OutcomeCounts = {};
  for (const r of await doneResults(redis, rec.runId)) countOutcome(counts, r.outcome);
  const state: RunState = cancelled ? 'cancelled' : rec.total === null ? 'interrupted' : 'done';
  // A cancelled run some of whose tasks still lack a result (its gaxx run left at a second
  // Ctrl-C) is shown cancelled, but recorded only once every task has its result.
  if (complete) await updateRunRecord(redis, rec.runId, { state, counts, finishedAt: now }).catch(() => undefined);
  return { ...rec, state, counts, finishedAt: complete ? now : rec.finishedAt };
}

/** Every stored result of a run (its done hash); one that is not a valid result of its task is skipped (`onIgnored`). */
async function doneResults(redis: Redis | Cluster, runId: string, onIgnored?: IgnoredHandler): Promise<TaskResult[]> {
  const results: TaskResult[] = [];
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(runDoneKey(runId), cursor, 'COUNT', 1000);
    cursor = next;
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const read = readResult(flat[i + 1], { runId, taskId: flat[i] as string });
      if (read.ok) results.push(read.result);
      else onIgnored?.(runId, read.why);
    }
  } while (cursor !== '0');
  return results;
}

/**
 * Accepts the results of tasks enqueued for the run (its tasks hash, queue/runs.ts), each once:
 * a result entry for any other task id does not count toward the run's end. Holds the ids of
 * the tasks that have their result (ids only, never output).
 */
function enqueuedTasks(redis: Redis | Cluster, runId: string, finished = new Set<string>()): AcceptResults {
  return async (ids) => {
    const enqueued = await redis.hmget(runTasksKey(runId), ...ids);
    return ids.map((id, i) => {
      if (enqueued[i] === null || finished.has(id)) return false;
      finished.add(id);
      return true;
    });
  };
}

export interface AttachOptions extends FollowHandlers {
  settings: RedisSettings;
  /** A ready producer connection to use (left open); else one of its own from `settings`. */
  redis?: Redis | Cluster;
  connect?: AgentConnector;
  timeoutMs?: number;
  /**
   * Called with the run's record before any result; for a run of one task per host, also with
   * each task's host (as the run's own `gaxx run` labels its output), when the run still has them.
   */
  onStart?: (rec: RunRecord, hosts?: ReadonlyMap<string, string>) => void;
}

export interface Attached {
  /** The run's record as it ended (its finishedAt set), or as it was when the wait ended early. */
  record: RunRecord;
  counts: OutcomeCounts;
  state: RunState;
  /**
   * Why the wait ended before every enqueued task had its result (DEADLINE_EXCEEDED,
   * REDIS_UNAVAILABLE): each such task was reported `unknown`, and the run goes on.
   */
  ended?: EndedEarly;
}

/**
 * Follows a recorded run from its start until every enqueued task has a result. A wait that
 * ends early (`timeoutMs`, Redis gone) is returned, not thrown, as `gaxx run`'s is: every
 * enqueued task without a result is reported `unknown` through onResult, and the run's record
 * stays as it is (the run still runs).
 */
export async function attachRun(runId: string, opts: AttachOptions): Promise<Attached> {
  const queue = await TaskQueue.openOn(opts.settings, opts.redis);
  let worker: SchedulerWorker | undefined;
  let timer: NodeJS.Timeout | undefined;
  let beat: NodeJS.Timeout | undefined;
  try {
    let rec = await requireRun(queue.redis, runId);
    const meta = rec.mode === 'each-host' ? await loadRunMeta(queue.redis, runId).catch(() => null) : null;
    opts.onStart?.(rec, meta ? new Map(Object.entries(meta.hosts)) : undefined);
    const counts: OutcomeCounts = {};
    let state: RunState | undefined;
    // Refused writes of the run, as a worker started here meets them (the follower probes too).
    const writes = new WriteHealth();
    const refresh = async (): Promise<void> => {
      rec = (await getRunRecord(queue.redis, runId).catch(() => undefined)) ?? rec;
      if (!worker && opts.connect && !(await schedulerAlive(queue.redis).catch(() => true))) {
        worker = SchedulerWorker.start({
          settings: opts.settings,
          connect: opts.connect,
          runId,
          onWrites: (_id, refused) => (refused === undefined ? writes.accepted('worker') : writes.refused('worker', refused)),
        });
      }
    };
    await refresh();
    timer = setInterval(() => void refresh(), 500);
    // This wait follows the run to its end: `gaxx runs` shows it running (once its input is all enqueued).
    beat = keepFollowing(queue.redis, runId);
    const finished = new Set<string>();
    const followed = followRun(queue.redis, runId, {
      accept: enqueuedTasks(queue.redis, runId, finished),
      // Redis lost the run when its registry entry and task list went, or a task it knows of went
      // with its result (a task list's gaxx run that still enqueues registers the run again).
      registered: true,
      outstanding: () => knownTasks({ rec, meta }, finished, true),
      onLive: opts.onLive,
      onNote: opts.onNote,
      onIgnored: opts.onIgnored,
      ...(opts.paced ? { paced: opts.paced } : {}),
      onResult: (r, o, shown) => {
        countOutcome(counts, r.outcome);
        opts.onResult?.(r, o, shown);
      },
      done: (n) => (state = runComplete(rec, n)) !== undefined,
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
      // Bounded like every run wait: REDIS_UNAVAILABLE when Redis stays away or refuses writes.
      redisGoneMs: goneMsOf(opts),
      writes,
    }).then(
      () => undefined,
      (e: unknown) => {
        if (!endsWaitEarly(e)) throw e;
        return endedBy(e);
      },
    );
    const ended = await followed;
    if (ended) {
      await reportMissing(queue.redis, runId, finished, ended, { rec, meta }, (r, o, shown, pending) => {
        countOutcome(counts, r.outcome);
        opts.onResult?.(r, o, shown, pending);
      });
      return { record: rec, counts, state: 'running', ended };
    }
    // The follow may have ridden out an outage that this connection is still coming back from.
    const after = <T>(op: () => Promise<T>): Promise<T> => mustLand(queue.redis, op, { what: `run ${runId}` });
    // A cancelled run stays cancelled, whoever follows it to its end; a failed one (cancelled for
    // its failure) stays failed.
    const final = state === 'failed' ? 'failed' : (await after(() => isCancelled(queue.redis, runId))) ? 'cancelled' : (state ?? 'done');
    // Followed to its end: this follower has every result's counts (a record `runs cancel` marked
    // cancelled before had none). Bounded like every run's end record: the results are what counts.
    const finishedAt = rec.finishedAt ?? Date.now();
    await landEndRecord(queue.redis, runId, { state: final, counts, finishedAt }, { what: `run ${runId}` });
    return { record: { ...rec, state: final, counts, finishedAt }, counts, state: final };
  } finally {
    clearInterval(timer);
    clearInterval(beat);
    await worker?.drain(5000);
    await queue.close();
  }
}

/**
 * Reports each enqueued task of `runId` without a result among `finished`: its job's result when
 * it failed for good, else `unknown` (the wait ended early: it may be queued, running, or done),
 * labelled with its host where the run has one. The run's task list is read now; when Redis lost
 * the run (REDIS_DATA_LOST), what the wait knew of it (`before`) counts too: a run of one task
 * per host's hosts as read at the start, a task list's record numbers up to the count it last
 * saw enqueued (its tasks' ids).
 */
async function reportMissing(
  redis: Redis | Cluster,
  runId: string,
  finished: ReadonlySet<string>,
  ended: EndedEarly,
  before: { rec: RunRecord; meta: RunMeta | null },
  onResult: AttachOptions['onResult'],
): Promise<void> {
  // The wait ended early because Redis may be away: what cannot be read is left unreported.
  const lost = ended.code === 'REDIS_DATA_LOST';
  // Redis lost the run: its task list now is what was enqueued since, if anything.
  const meta = (await loadRunMeta(redis, runId).catch(() => null)) ?? (lost ? before.meta : null);
  const failed = await failedAtWaitEnd(redis, runId, ended);
  for (const taskId of knownTasks({ rec: before.rec, meta }, finished, lost)) {
    const r = failed.get(taskId);
    if (r) onResult?.(r, [], false);
    else onResult?.(resultAtWaitEnd(runId, taskId, meta?.hosts[taskId] ?? '', ended.code, `gaxx runs wait ${runId}`), [], false, true);
  }
}

/**
 * The tasks of a run known to its follower without a result among `finished`: its task list's
 * (`meta`), and with `records`, a task list's record numbers up to its total (or its count
 * enqueued so far while its input is read), which are its tasks' ids.
 */
function* knownTasks(known: { rec: RunRecord; meta: RunMeta | null }, finished: ReadonlySet<string>, records: boolean): Generator<string> {
  const { rec, meta } = known;
  const listed = new Set(meta?.taskIds);
  for (const id of listed) if (!finished.has(id)) yield id;
  if (records && rec.mode === 'tasks')
    for (let i = 1; i <= (rec.total ?? rec.enqueued); i++) if (!finished.has(String(i)) && !listed.has(String(i))) yield String(i);
}

/** Task-list records read in one round trip (a list may have millions). */
const RECORDS_PER_READ = 10_000;

/** The stored results of a run (from its done hash), in task order, with a task list's records (`inputs`, by index). */
export async function storedResults(
  settings: RedisSettings,
  runId: string,
  onIgnored?: IgnoredHandler,
): Promise<{ record: RunRecord; results: TaskResult[]; inputs: (string | undefined)[] }> {
  const queue = await TaskQueue.open(settings);
  try {
    const record = await settleRunRecord(queue.redis, await requireRun(queue.redis, runId));
    const results = await doneResults(queue.redis, runId, onIgnored);
    const key = (id: string): [number, string] => [Number.parseInt(id, 10), id];
    results.sort((a, b) => {
      const [na, sa] = key(a.taskId);
      const [nb, sb] = key(b.taskId);
      return na - nb || compareText(sa, sb);
    });
    // A task list's records, as its gaxx run --json gave them (none for a run older than them).
    const inputs: (string | undefined)[] = [];
    if (record.mode === 'tasks')
      for (let i = 0; i < results.length; i += RECORDS_PER_READ)
        inputs.push(
          ...(await taskRecords(
            queue.redis,
            runId,
            results.slice(i, i + RECORDS_PER_READ).map((r) => r.taskId),
          )),
        );
    return { record, results, inputs };
  } finally {
    await queue.close();
  }
}

/**
 * Cancels a recorded run: sets its cancel flag (workers stop its running tasks; a live
 * submitter stops reading input) and withdraws its queued tasks, reporting them `cancelled`
 * (`why` before the task ran). Resolves to the number withdrawn here.
 */
export async function cancelRecordedRun(
  settings: RedisSettings,
  runId: string,
  why = 'run cancelled',
): Promise<{ record: RunRecord; withdrawn: number; finished: boolean; alreadyCancelled: boolean }> {
  const queue = await TaskQueue.open(settings);
  try {
    const record = await requireRun(queue.redis, runId);
    // Every task of a done run has its result: there is nothing left to stop or withdraw.
    if (record.state === 'done') return { record, withdrawn: 0, finished: true, alreadyCancelled: false };
    // Cancelled before (a Ctrl-C, another `runs cancel`): this one only withdraws what is queued still.
    const alreadyCancelled = await isCancelled(queue.redis, runId);
    // Nor is there for a run whose tasks all have their results, though nobody recorded its end yet
    // (its gaxx run was killed as a daemon finished it) or it ended interrupted: it ended as it
    // ended, and is recorded so (when its submitter is gone), never made cancelled afterwards.
    if (!alreadyCancelled && (record.state === 'running' || record.state === 'interrupted')) {
      const ended = runComplete(record, await queue.redis.hlen(runDoneKey(runId)));
      if (ended === 'done' || ended === 'interrupted') {
        const settled = await settleRunRecord(queue.redis, record);
        return { record: { ...settled, state: ended }, withdrawn: 0, finished: true, alreadyCancelled: false };
      }
    }
    await requestCancel(queue.redis, runId);
    const jobs = await queue.queueFor(runId).getJobs(['waiting', 'delayed', 'prioritized'], 0, -1);
    const ids = jobs.filter((j) => j?.id?.startsWith(`${runId}-`)).map((j) => j.id as string);
    const withdrawn = await queue.withdrawIds(ids);
    for (const jobId of withdrawn) {
      const taskId = jobId.slice(runId.length + 1);
      if (jobIdFor(runId, taskId) !== jobId) continue;
      await publishResult(queue.redis, syntheticResult(runId, taskId, 'cancelled', 'cancelled', `${why} before the task ran`), []);
    }
    // No process follows the run to its end to say so (its submitter died: running with no one
    // behind it, or interrupted, waiting for a --resume it will not get now): said here, so that it
    // is not found running (or resumable) again.
    if (!submitterAlive(record) && (record.state === 'running' || record.state === 'interrupted'))
      await updateRunRecord(queue.redis, runId, { state: 'cancelled' });
    return { record, withdrawn: withdrawn.length, finished: false, alreadyCancelled };
  } finally {
    await queue.close();
  }
}
