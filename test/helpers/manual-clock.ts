/** A clock that moves only when a test says so: pacing and backoff tested without waiting. */
import type { Clock } from '../../cli/providers/types.js';

export class ManualClock implements Clock {
  private t = 0;
  private timers: { at: number; fire: () => void }[] = [];
  /** Every sleep asked for, in ms. */
  readonly slept: number[] = [];

  now(): number {
    return this.t;
  }

  sleep(ms: number): Promise<void> {
    this.slept.push(ms);
    return new Promise((resolve) => {
      this.timers.push({ at: this.t + ms, fire: resolve });
    });
  }

  /** Timers currently waiting. */
  get waiting(): number {
    return this.timers.length;
  }

  /** Moves time forward, firing due timers in order; lets promise callbacks run between. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await new Promise<void>((r) => setImmediate(r));
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fire();
    }
    this.t = end;
    await new Promise<void>((r) => setImmediate(r));
  }
}

/**
 * Real time that jumps forward when a test says so: expiry judged against times the code under
 * test takes from Date.now (a task's end), moved past a retention rather than waited for, so a
 * loaded machine can neither expire an entry before the test looks nor make the test wait.
 */
export function skewedClock(): { now: () => number; advance(ms: number): void } {
  let skew = 0;
  return {
    now: () => Date.now() + skew,
    advance: (ms) => {
      skew += ms;
    },
  };
}
