/**
 * Task results and the per-run Redis stream they are published to.
 *
 * Stream `{gaxx}:run:<runId>:events` (MAXLEN ~ bounded, TTL refreshed on each write) holds, per
 * task, its output chunks (`t=out`, `s=1|2`, `d=bytes`) followed by its result (`t=res`,
 * `r=json`). A Lua script publishes a task's entries only if `{gaxx}:run:<runId>:done` has no
 * result for it yet, so a job re-dispatched after a scheduler crash (its agent replaying the
 * stored result) never shows up twice. `waitForRun` reads the stream until every task has a result.
 * Live output entries (`t=live`, see live.ts) may come before; the result entry says how many
 * bytes of them were exactly the output's start (`lb`), so a reader that showed them need not
 * show the output again.
 */
import type { Cluster, Redis } from 'ioredis';
import { gaxxKey } from '../redis/redis.js';
import { lockHeld, LockLost, type LockRef } from './job-lock.js';

/**
 * How a task ended. Only `succeeded` counts as success. `unreachable`: it certainly never ran (no
 * agent took it). `unknown`: it started (see `startedOn`), or may have (its request went out; its
 * `error` names the agent), but its outcome was lost: the stream broke
 * and the agent never gave its result back (gone too long, restarted mid-task, or the waiting
 * run ended first). `refused`: its input could not become a valid task (a task-list record that
 * is not UTF-8, too long, ...): it was never queued nor run, and `reason` is the code.
 */
export const TASK_OUTCOMES = ['succeeded', 'failed', 'timeout', 'cancelled', 'killed', 'unreachable', 'unknown', 'error', 'refused'] as const;

/** A task's outcome (TASK_OUTCOMES). */
export type TaskOutcome = (typeof TASK_OUTCOMES)[number];

/** One task's result, as published and returned by waitForRun. */
export interface TaskResult {
  runId: string;
  taskId: string;
  /** Agent address the task ran on (the last one tried when it never ran). */
  host: string;
  outcome: TaskOutcome;
  exitCode: number | null;
  signal: string | null;
  /** The agent's reason for ending it (timeout, output_cap, ...) or the failure's code. */
  reason: string;
  /** Human explanation for `error` / `unreachable` outcomes. */
  error?: string;
  durationMs: number;
  stdoutBytes: number;
  stderrBytes: number;
  /** The output is incomplete: cut at its cap (its start kept), over the run's budget, or lost (see outputLost). */
  truncated: boolean;
  /**
   * The output passed the task's output cap and was cut there (its first bytes kept). With reason
   * `output_cap` the agent stopped the task for it (outcome `killed`); without, the task ended on
   * its own before the agent's stop reached it, and its outcome is its own (`succeeded`, `failed`).
   */
  outputCapped: boolean;
  /**
   * What output there is, if any, is only its end: its start was lost before it reached Redis
   * (the agent's replay buffer keeps a task's last 64 KiB; Redis refused the result write that
   * held the rest). `error` says how much was kept.
   */
  outputLost: boolean;
  /**
   * Dispatches that reached an agent (1 when nothing went wrong). Waits on an open breaker and
   * busy refusals (RESOURCE_EXHAUSTED) are not attempts.
   */
  attempts: number;
  /** Agents an execution of this task was seen starting on, one entry per fresh start. */
  startedOn: string[];
  /** The command may have run more than once (more than one start, or re-placed after it may have started). */
  mayHaveRepeated: boolean;
  /** The agent attached to / replayed an execution an earlier dispatch started. */
  attached: boolean;
  replayed: boolean;
  finishedAt: string;
}

/** One output chunk: 1 = stdout, 2 = stderr. */
export interface OutputChunk {
  stream: 1 | 2;
  data: Buffer;
}

/** The fields every result has; the rest default to "nothing happened". */
export type ResultBase = Pick<TaskResult, 'runId' | 'taskId' | 'host' | 'outcome' | 'reason'>;

/** The one constructor of TaskResult: `base` plus `fields`, defaults for the rest. */
export function taskResult(base: ResultBase, fields: Partial<Omit<TaskResult, keyof ResultBase>> = {}): TaskResult {
  return {
    ...base,
    exitCode: null,
    signal: null,
    durationMs: 0,
    stdoutBytes: 0,
    stderrBytes: 0,
    truncated: false,
    outputCapped: false,
    outputLost: false,
    attempts: 0,
    startedOn: [],
    mayHaveRepeated: false,
    attached: false,
    replayed: false,
    finishedAt: new Date().toISOString(),
    ...fields,
  };
}

/**
 * A task without a result when a wait for its run ended early (`code`: DEADLINE_EXCEEDED,
 * REDIS_UNAVAILABLE...): `unknown`, as it may be queued, running or done, and `collect` says how
 * to collect it later (REDIS_DATA_LOST: it cannot be).
 */
export function resultAtWaitEnd(runId: string, taskId: string, host: string, code: string, collect: string): TaskResult {
  // Nothing of a run whose records Redis lost can be collected later.
  const error =
    code === 'REDIS_DATA_LOST'
      ? "no result: the run's records are gone from Redis (flushed, or restarted without its data); the task may have run, and its result cannot be collected"
      : `no result when the wait ended (${code}); the task may be queued, running, or done: ${collect}`;
  return taskResult({ runId, taskId, host, outcome: 'unknown', reason: code }, { error });
}

export const STREAM_MAXLEN = 500_000;
export const RESULT_TTL_MS = 24 * 3600 * 1000;
const ENTRY_BYTES = 64 * 1024;

export const runEventsKey = (runId: string): string => gaxxKey('run', runId, 'events');
export const runDoneKey = (runId: string): string => gaxxKey('run', runId, 'done');

/** Whether every one of `taskIds` of the run has its result published (its done hash holds them all). */
export async function allPublished(redis: Redis | Cluster, runId: string, taskIds: readonly string[]): Promise<boolean> {
  const key = runDoneKey(runId);
  if ((await redis.hlen(key)) < taskIds.length) return false;
  for (let i = 0; i < taskIds.length; i += 1000) {
    const have = await redis.hmget(key, ...taskIds.slice(i, i + 1000));
    if (have.some((v) => v === null)) return false;
  }
  return true;
}

export { outcomeOf, outputBytes } from '../client/outcome.js';

// KEYS: events, done, the run's stored-output byte count, then the job's lock when the publisher
// must hold it. ARGV: task, maxlen, ttl, result json, live bytes, output-is-live flag, output size,
// run budget, the result json as stored when its output is over the budget, the lock's token
// (or ''), then (stream, data) pairs.
const PUBLISH = `
if #KEYS == 4 and not (${lockHeld('KEYS[4]', 'ARGV[10]')}) then return -1 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
local size = tonumber(ARGV[7])
local keep = tonumber(redis.call('GET', KEYS[3]) or '0') + size <= tonumber(ARGV[8])
redis.call('HSET', KEYS[2], ARGV[1], keep and ARGV[4] or ARGV[9])
if keep then
  for i = 11, #ARGV, 2 do
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 't', 'out', 'task', ARGV[1], 's', ARGV[i], 'd', ARGV[i + 1])
  end
  redis.call('INCRBY', KEYS[3], size)
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 't', 'res', 'task', ARGV[1], 'r', ARGV[4], 'lb', ARGV[5], 'lo', ARGV[6], 'ob', keep and '0' or '1')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
`;

/** Output a run may store (live and final together), unless the worker is told otherwise. */
export const RUN_OUTPUT_BUDGET_BYTES = 256 * 1024 * 1024;

export const runBytesKey = (runId: string): string => gaxxKey('run', runId, 'bytes');

export interface PublishOptions {
  /** The live entries already hold exactly the whole output (`exactLiveBytes` of it): store it once. */
  outputIsLive?: boolean;
  /** The run's output budget in bytes (default RUN_OUTPUT_BUDGET_BYTES). */
  budgetBytes?: number;
  /**
   * The job's lock, which the publisher must hold (a worker publishing the result of the job it
   * runs): nothing is written once another worker has the job (LockLost is thrown).
   */
  lock?: LockRef;
}

/** Why a result's output is missing when the run's output budget was used up. */
export const OVER_BUDGET_ERROR = "output not stored: over the run's output budget";

/** `r` as it reads once its output was not stored (over the run's output budget): truncated, and saying why. */
export function overBudget(r: TaskResult): TaskResult {
  if (r.error?.includes(OVER_BUDGET_ERROR)) return { ...r, truncated: true };
  return { ...r, truncated: true, error: [r.error, OVER_BUDGET_ERROR].filter(Boolean).join('; ') };
}

/**
 * Publishes a task's output and result once; false when it had been published already.
 * `exactLiveBytes`: the live output streamed before was exactly this many bytes of `output`'s
 * start (omit when it was not, or none was streamed). With `outputIsLive` the output is not
 * stored again: readers take it from the live entries. Output beyond the run's byte budget is
 * not stored (the result entry says `ob=1`; readers mark the result truncated; the done hash
 * holds it so marked, for readers of stored results: `gaxx runs show`). With `opts.lock`, nothing
 * is written once that lock is another worker's (LockLost is thrown).
 */
export async function publishResult(
  redis: Redis | Cluster,
  result: TaskResult,
  output: OutputChunk[],
  exactLiveBytes?: number,
  opts: PublishOptions = {},
): Promise<boolean> {
  const live = exactLiveBytes === undefined ? '-1' : String(exactLiveBytes);
  const stored = opts.outputIsLive ? [] : output;
  const size = stored.reduce((n, c) => n + c.data.length, 0);
  const args: Array<string | Buffer> = [
    result.taskId,
    String(STREAM_MAXLEN),
    String(RESULT_TTL_MS),
    JSON.stringify(result),
    live,
    opts.outputIsLive ? '1' : '0',
    String(size),
    String(opts.budgetBytes ?? RUN_OUTPUT_BUDGET_BYTES),
    // The stored result says its output was cut (the stream's entry says so with `ob=1`).
    JSON.stringify(overBudget(result)),
    opts.lock?.token ?? '',
  ];
  for (const c of stored) {
    for (let off = 0; off < c.data.length; off += ENTRY_BYTES) args.push(String(c.stream), c.data.subarray(off, off + ENTRY_BYTES));
  }
  const keys = [runEventsKey(result.runId), runDoneKey(result.runId), runBytesKey(result.runId), ...(opts.lock ? [opts.lock.key] : [])];
  const added = await redis.eval(PUBLISH, keys.length, ...keys, ...args);
  if (added === -1) throw new LockLost(`${result.runId}-${result.taskId}`);
  return added === 1;
}
