/**
 * The one retry policy of the scheduler: the backoff every wait uses, its defaults, which errors
 * are transport failures, how long a busy agent is waited for (and the agent's own
 * `gaxx-retry-after-ms` hint), and how long a task that may have started waits for its agent
 * before its outcome is declared lost.
 *
 * Counting: an attempt is a dispatch that reached an agent and was not refused as busy. Waiting
 * on an open breaker, and RESOURCE_EXHAUSTED (the agent's slots are taken, by others' tasks or
 * because the scheduler freed a slot before the agent did; or it cannot take work: see
 * `refusalKind`), are not attempts; they are bounded by time instead (`agentGoneMs`, `busyWaitMs`).
 */
import { isGaxxError, SLOTS_FULL, type ErrorCode } from '../../proto/index.js';

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/** Defaults of every retry knob; a task's `retry` overrides attempts and the base delay. */
export const RETRY_DEFAULTS = {
  /** Dispatch attempts for transport failures (TaskSpec `retry.attempts`). */
  attempts: 5,
  /** First backoff delay (TaskSpec `retry.backoffMs`). */
  backoffMs: 500,
  /** Largest single backoff. */
  backoffMaxMs: 30_000,
  /** How long an agent that is down (breaker open, or unreachable) may be waited for. */
  agentGoneMs: 120_000,
  /** How long a task every agent it may use refuses (RESOURCE_EXHAUSTED) may wait before it ends `error`. */
  busyWaitMs: 600_000,
  /** Busy retries back off up to this delay unless the agent's hint says otherwise. */
  busyMaxDelayMs: 2_000,
} as const;

export type RetryPolicy = { -readonly [K in keyof typeof RETRY_DEFAULTS]: number };

/** The defaults with `overrides` applied. */
export function retryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  return { ...RETRY_DEFAULTS, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
}

/**
 * Exponential backoff with EQUAL jitter: half of the exponential delay is fixed, half random, so
 * retries spread out but never collapse to zero (full jitter can retry at once). `attempt`
 * starts at 1. The only backoff in the scheduler (breakers use it too).
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const exp = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** Codes that mean the agent could not be reached or the connection broke (not the agent's verdict). */
const TRANSPORT: ReadonlySet<ErrorCode> = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL', 'CANCELLED']);

/** Whether `code` is a transport failure (counted on the agent's breaker, retried). */
export function isTransportFailure(code: ErrorCode): boolean {
  return TRANSPORT.has(code);
}

/** The agent's retry hint carried by a refusal (AgentClient puts it in `details.retryAfterMs`). */
export function retryAfterHint(e: unknown): number | undefined {
  if (!isGaxxError(e)) return undefined;
  const v = e.details?.retryAfterMs;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

/**
 * Whether `e` is an agent's refusal of new work before anything started: RESOURCE_EXHAUSTED, or
 * any code that comes with the agent's word of why it cannot take work now (`gaxx-refusal`, read
 * into `details.refusal`), as its disk refusal does for a read-only file system (FILE_ACCESS) or
 * an I/O error (UNAVAILABLE): the task is not sent there again before the agent's hint, and goes
 * elsewhere or waits, as for a full disk; neither an error of the task nor a transport failure.
 */
export function refusesWork(e: unknown): boolean {
  if (!isGaxxError(e)) return false;
  if (e.code === 'RESOURCE_EXHAUSTED') return true;
  const kind = e.details?.refusal;
  return typeof kind === 'string' && kind !== '';
}

/**
 * What a RESOURCE_EXHAUSTED refusal says is exhausted (the agent's `gaxx-refusal`, read by the
 * agent client into `details.refusal`): SLOTS_FULL when every slot of the agent runs a task (one
 * frees when a task ends), else why the agent cannot take work now (`disk-reserve`, `rate-limit`...;
 * `refused` when it does not say). An agent from before that metadata says its slots are full
 * only in words.
 */
export function refusalKind(e: unknown): string {
  if (!isGaxxError(e)) return 'refused';
  const kind = e.details?.refusal;
  if (typeof kind === 'string' && kind) return kind;
  return /agent is running \d+ tasks, its capacity/.test(e.message) ? SLOTS_FULL : 'refused';
}

/**
 * How long to wait before asking a busy agent again: its hint when it sent one (capped by the
 * busy bound), else a backoff that grows to `busyMaxDelayMs`.
 */
export function busyDelay(n: number, hintMs: number | undefined, p: RetryPolicy, random: () => number = Math.random): number {
  if (hintMs !== undefined) return Math.min(Math.max(1, hintMs), p.busyMaxDelayMs * 5);
  return backoffDelay(Math.min(n, 8), { baseMs: 20, maxMs: p.busyMaxDelayMs }, random);
}
