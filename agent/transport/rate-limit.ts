/**
 * Token bucket rate limiting per caller identity: `burst` calls at once, refilled at `perSecond`.
 * Keyed by identity (from the verified certificate), so one noisy caller cannot starve another.
 */
import type { RateLimitConfig } from './guard-config.js';

/** The outcome of taking a token: allowed, or refused with the wait until one is available. */
export type TakeResult = { ok: true } | { ok: false; retryAfterMs: number };

interface Bucket {
  tokens: number;
  updatedMs: number;
}

/** Token buckets keyed by identity, bounded in number. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private refused = 0;

  constructor(private readonly cfg: RateLimitConfig) {}

  /** Takes one token for `key`; when none is left, says how long until one is. */
  take(key: string, nowMs = Date.now()): TakeResult {
    const b = this.refill(key, nowMs);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    this.refused += 1;
    return { ok: false, retryAfterMs: Math.max(1, Math.ceil(((1 - b.tokens) / this.cfg.perSecond) * 1000)) };
  }

  /** Calls refused so far (for metrics). */
  refusedTotal(): number {
    return this.refused;
  }

  /** Identities currently tracked. */
  size(): number {
    return this.buckets.size;
  }

  private refill(key: string, nowMs: number): Bucket {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.cfg.maxTracked) this.prune(nowMs);
      b = { tokens: this.cfg.burst, updatedMs: nowMs };
      this.buckets.set(key, b);
      return b;
    }
    const elapsed = Math.max(0, nowMs - b.updatedMs);
    b.tokens = Math.min(this.cfg.burst, b.tokens + (elapsed / 1000) * this.cfg.perSecond);
    b.updatedMs = nowMs;
    // Re-insert so Map order stays least-recently-used first.
    this.buckets.delete(key);
    this.buckets.set(key, b);
    return b;
  }

  /** Drops buckets that have refilled (forgetting them loses nothing), else the oldest. */
  private prune(nowMs: number): void {
    const fullAfterMs = (this.cfg.burst / this.cfg.perSecond) * 1000;
    for (const [k, b] of this.buckets) {
      if (nowMs - b.updatedMs >= fullAfterMs) this.buckets.delete(k);
    }
    if (this.buckets.size >= this.cfg.maxTracked) {
      const oldest = this.buckets.keys().next();
      if (!oldest.done) this.buckets.delete(oldest.value);
    }
  }
}
