/**
 * Pacing shared by every cloud provider: a token bucket whose tokens come back `windowMs` after
 * the request that spent them has finished. So at most `limit` requests start in any window,
 * measured the way the API measures it (a token returns only after the response arrived, so the
 * server never sees two requests closer than the window even when the network delays one).
 * Time comes from an injectable Clock, so a bench can scale it down and tests need no sleeps.
 */
import { GaxxError } from '../../proto/index.js';
import { onAbort } from '../abort-fanout.js';
import type { Clock } from './types.js';

/** Real time. */
export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) => abortableTimeout(ms, signal),
};

/**
 * A clock running `factor` times faster than real time (factor 10: a 15 s window passes in
 * 1.5 s). Provider and fake server given the same scaled clock agree on what a window is.
 */
export function scaledClock(factor: number): Clock {
  const base = performance.now();
  return {
    now: () => base + (performance.now() - base) * factor,
    sleep: (ms, signal) => abortableTimeout(ms / factor, signal),
  };
}

function abortableTimeout(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled(signal));
    const t = setTimeout(
      () => {
        untie();
        resolve();
      },
      Math.max(0, ms),
    );
    const untie = onAbort(signal, () => {
      clearTimeout(t);
      reject(cancelled(signal as AbortSignal));
    });
  });
}

function cancelled(signal: AbortSignal): unknown {
  return signal.reason instanceof GaxxError ? signal.reason : new GaxxError('CANCELLED', 'cancelled');
}

/** At most `limit` requests per `windowMs`, e.g. Linode's 20 instance creations per 15 s. */
export interface PaceLimit {
  limit: number;
  windowMs: number;
}

/** The sliding-window token bucket described above. */
export class Pacer {
  private tokens: number;
  /** Clock times at which spent tokens come back, ascending. */
  private readonly returns: number[] = [];
  private readonly waiters: (() => void)[] = [];
  private wakeScheduled = false;

  constructor(
    readonly pace: PaceLimit,
    private readonly clock: Clock,
  ) {
    if (!(pace.limit >= 1 && pace.windowMs > 0)) throw new GaxxError('INVALID_ARGUMENT', 'pace limit must be >= 1 per positive window');
    this.tokens = pace.limit;
  }

  /**
   * Waits for a token and runs `fn`; the token comes back `windowMs` after `fn` settled.
   * Waiters are served in arrival order.
   */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await fn();
    } finally {
      this.returns.push(this.clock.now() + this.pace.windowMs);
      this.returns.sort((a, b) => a - b);
      this.schedule();
    }
  }

  private async acquire(signal?: AbortSignal): Promise<void> {
    this.refill();
    if (this.tokens > 0 && this.waiters.length === 0) {
      this.tokens--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(cancelled(signal));
      const w = (): void => {
        untie();
        resolve();
      };
      const untie = onAbort(signal, () => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(cancelled(signal as AbortSignal));
      });
      this.waiters.push(w);
      this.schedule();
    });
  }

  private refill(): void {
    const now = this.clock.now();
    while (this.returns.length > 0 && (this.returns[0] as number) <= now) {
      this.returns.shift();
      this.tokens++;
    }
  }

  /** Hands tokens to waiters; sleeps until the next return when there are none. */
  private schedule(): void {
    this.refill();
    while (this.tokens > 0 && this.waiters.length > 0) {
      this.tokens--;
      (this.waiters.shift() as () => void)();
    }
    if (this.waiters.length === 0 || this.wakeScheduled || this.returns.length === 0) return;
    this.wakeScheduled = true;
    const wait = (this.returns[0] as number) - this.clock.now();
    void this.clock.sleep(Math.max(0, wait)).then(() => {
      this.wakeScheduled = false;
      this.schedule();
    });
  }
}

/** Retry policy for 429 and 5xx answers and network failures. */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 500, maxDelayMs: 30_000 };

/**
 * Delay before retry number `retry` (1-based): the server's Retry-After when it gave one
 * (capped at maxDelayMs), else exponential backoff with full jitter. `random` is injectable.
 */
export function retryDelay(retry: number, policy: RetryPolicy, retryAfterMs?: number, random: () => number = Math.random): number {
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs >= 0) return Math.min(retryAfterMs, policy.maxDelayMs);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return ceiling / 2 + (random() * ceiling) / 2;
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date (relative to `nowMs`, wall clock). */
export function parseRetryAfter(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
