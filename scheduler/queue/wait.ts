/**
 * Waiting for a fixed set of a run's tasks: followRun (follow.ts), the one reader of a run's
 * stream, bounded as every wait is (a deadline, the caller's stop signals, a Redis that stays
 * away: REDIS_UNAVAILABLE after `redisGoneMs`; one that comes back in time changes nothing, the
 * results are in its AOF and the read goes on from the last entry seen), with the results and
 * output collected per task.
 *
 * Result entries are checked as every reader checks them (stored-result.ts): one that is not a
 * valid result of this run and of its entry's task, or is of a task the wait does not wait for
 * (or already has), is skipped and reported (`onIgnored`), never collected.
 */
import type { Cluster, Redis } from 'ioredis';
import { counted, GaxxError, isGaxxError } from '../../proto/index.js';
import { followRun } from './follow.js';
import type { OnRedis } from './reachability.js';
import { TICK_MS } from './reachability.js';
import type { OutputChunk, TaskResult } from './results.js';
import type { IgnoredHandler } from './stored-result.js';
import type { WriteHealth } from './write-health.js';

/** A finished run: results and output per task id. */
export interface RunResults {
  results: Map<string, TaskResult>;
  output: Map<string, OutputChunk[]>;
}

export interface WaitOptions {
  /** Give up (DEADLINE_EXCEEDED) after this long; no limit when absent. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Stop waiting and return the results collected so far (unlike `signal`, which throws). */
  until?: AbortSignal;
  /**
   * Called once per task as its result arrives, with its output; `liveShown` is true when the
   * live chunks passed to `onLive` were exactly that output (no need to show it again). `pending`:
   * no result of the task came (the wait ended early, or a cancel's grace passed): `result` is
   * this process's report of that (`unknown`, ...), not a result the run stores.
   */
  onResult?: (result: TaskResult, output: OutputChunk[], liveShown: boolean, pending?: boolean) => void;
  /** Called with a running task's output as it arrives (before its result). */
  onLive?: (taskId: string, chunk: OutputChunk) => void;
  /** A word about a running task from its worker (an agent it waits for went away...): a diagnostic, not output. */
  onNote?: (taskId: string, text: string) => void;
  /**
   * Redis went away (`down`, repeated about every 5 s with how long) or came back; with
   * `refused`, Redis is reachable but refuses writes (its reason), or takes them again.
   */
  onRedis?: OnRedis;
  /** A result entry that was skipped (not a valid result of one of the tasks waited for), with why. */
  onIgnored?: IgnoredHandler;
  /** End the wait (REDIS_UNAVAILABLE) when Redis stays unreachable, or refuses writes, this long (default: no limit). */
  redisGoneMs?: number;
  /** Refusals of the run's writes reported by others (its in-process worker); the wait adds its own probe's. */
  writes?: WriteHealth;
  /** Collect into this object (the caller keeps what arrived when the wait throws). */
  into?: RunResults;
  /**
   * Whether more tasks may still join the wait (a task list its gaxx run still reads): while it
   * says so, the wait goes on though every task so far has its result; its caller adds the new
   * ones to `taskIds` (then a Set it holds) before it says no.
   */
  more?: () => boolean;
  /**
   * With `more`: given the ids of results read that are not (yet) among `taskIds`, adds to it
   * those of tasks the run enqueued meanwhile, before the read's results are judged.
   */
  join?: (taskIds: string[]) => Promise<void>;
}

/** Reads the run's stream until every one of `taskIds` has a result. */
export async function waitForRun(
  redis: Redis | Cluster,
  runId: string,
  taskIds: readonly string[] | ReadonlySet<string>,
  opts: WaitOptions = {},
): Promise<RunResults> {
  // A Set is the caller's, and may grow while the wait goes on (`more`).
  const want: ReadonlySet<string> = taskIds instanceof Set ? taskIds : new Set(taskIds);
  const out: RunResults = opts.into ?? { results: new Map(), output: new Map() };
  // A task's first valid result is its result; one read may hold a task's id more than once.
  const taken = new Set(out.results.keys());
  const open = (task: string): boolean => want.has(task) && !out.results.has(task);
  // Either signal ends the follow; which one it was decides how the wait ends.
  const stop = new AbortController();
  const signals = [opts.until, opts.signal].filter((s): s is AbortSignal => s !== undefined);
  const onAbort = (): void => stop.abort();
  for (const s of signals) {
    if (s.aborted) stop.abort();
    else s.addEventListener('abort', onAbort, { once: true });
  }
  try {
    await followRun(redis, runId, {
      accept: async (ids) => {
        const unknown = ids.filter((id) => !want.has(id));
        if (unknown.length > 0 && opts.join) await opts.join(unknown);
        return ids.map((id) => {
          const ok = want.has(id) && !taken.has(id);
          if (ok) taken.add(id);
          return ok;
        });
      },
      done: () => out.results.size >= want.size && opts.more?.() !== true,
      outstanding: function* () {
        for (const t of want) if (!out.results.has(t)) yield t;
      },
      until: stop.signal,
      pollMs: TICK_MS,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.redisGoneMs !== undefined ? { redisGoneMs: opts.redisGoneMs } : {}),
      ...(opts.onRedis ? { onRedis: opts.onRedis } : {}),
      ...(opts.writes ? { writes: opts.writes } : {}),
      ...(opts.onIgnored ? { onIgnored: opts.onIgnored } : {}),
      onLive: (task, chunk) => {
        if (open(task)) opts.onLive?.(task, chunk);
      },
      onNote: (task, text) => {
        if (open(task)) opts.onNote?.(task, text);
      },
      onResult: (r, output, shown) => {
        out.results.set(r.taskId, r);
        out.output.set(r.taskId, output);
        opts.onResult?.(r, output, shown);
      },
    });
  } catch (e) {
    if (!isGaxxError(e, 'DEADLINE_EXCEEDED')) throw e;
    throw new GaxxError('DEADLINE_EXCEEDED', `run ${runId}: ${want.size - out.results.size} of ${counted(want.size, 'task')} had no result in time`);
  } finally {
    for (const s of signals) s.removeEventListener('abort', onAbort);
  }
  if (out.results.size < want.size && !opts.until?.aborted && opts.signal?.aborted) throw new GaxxError('CANCELLED', 'stopped waiting for the run');
  return out;
}
