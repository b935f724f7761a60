/**
 * A circuit breaker per agent and the backoff every retry uses. The breaker opens after
 * `failureThreshold` consecutive transport failures, stays open for a growing, jittered period,
 * then lets one Health probe through (its open periods use the retry policy's backoff) (half-open): SERVING closes it, anything else re-opens it
 * for longer. Time is passed in, so the state machine is testable without clocks.
 */

import { backoffDelay } from './retry-policy.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  failureThreshold: number;
  /** First open period; doubled on each failed probe, up to maxOpenMs. */
  openMs: number;
  maxOpenMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = { failureThreshold: 3, openMs: 1000, maxOpenMs: 30_000 };

/** One agent's breaker. */
export class Breaker {
  private failures = 0;
  private opens = 0;
  private openUntil = 0;
  private probing = false;
  private current: BreakerState = 'closed';

  constructor(
    private readonly opts: BreakerOptions = DEFAULT_BREAKER,
    private readonly random: () => number = Math.random,
  ) {}

  /** The state at `now` (an open breaker whose period passed reads as half-open). */
  state(now: number): BreakerState {
    if (this.current === 'open' && now >= this.openUntil) this.current = 'half-open';
    return this.current;
  }

  /** Whether a task may be dispatched now. Half-open waits for the probe's verdict. */
  allows(now: number): boolean {
    return this.state(now) === 'closed';
  }

  /** When an open breaker will want its probe (0 when not open). */
  reopensAt(): number {
    return this.current === 'open' ? this.openUntil : 0;
  }

  /** True once when a half-open breaker wants its Health probe; the caller runs it. */
  takeProbe(now: number): boolean {
    if (this.state(now) !== 'half-open' || this.probing) return false;
    this.probing = true;
    return true;
  }

  /** A dispatch or probe reached the agent. */
  recordSuccess(): void {
    this.failures = 0;
    this.opens = 0;
    this.probing = false;
    this.current = 'closed';
  }

  /** A transport failure (unreachable, connection dropped) or a failed probe. */
  recordFailure(now: number): void {
    this.failures += 1;
    const wasProbe = this.probing;
    this.probing = false;
    if (wasProbe || this.current === 'half-open' || this.failures >= this.opts.failureThreshold) {
      this.opens += 1;
      const period = backoffDelay(this.opens, { baseMs: this.opts.openMs, maxMs: this.opts.maxOpenMs }, this.random);
      this.current = 'open';
      this.openUntil = now + Math.max(1, period);
    }
  }
}
