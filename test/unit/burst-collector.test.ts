// The task launcher's collection after a burst (BurstCollector, agent/observe/collect-garbage.ts):
// once at least N tasks ran since the last one, and none has run for the quiet time; never
// while a task runs, never for a smaller burst, and once per burst.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BurstCollector } from '../../agent/observe/collect-garbage.js';

const QUIET_MS = 5000;

function burst(c: BurstCollector, n: number): void {
  for (let i = 0; i < n; i++) {
    c.started();
    c.ended();
  }
}

describe('BurstCollector', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('collects once, the quiet time after a burst of at least N tasks', () => {
    const collect = vi.fn();
    const c = new BurstCollector(10, QUIET_MS, collect);
    burst(c, 10);
    vi.advanceTimersByTime(QUIET_MS - 1);
    expect(collect).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(collect).toHaveBeenCalledTimes(1);
    // The count starts again: a lone task later is no burst.
    burst(c, 1);
    vi.advanceTimersByTime(10 * QUIET_MS);
    expect(collect).toHaveBeenCalledTimes(1);
  });

  it('does not collect after a smaller burst', () => {
    const collect = vi.fn();
    burst(new BurstCollector(10, QUIET_MS, collect), 9);
    vi.advanceTimersByTime(10 * QUIET_MS);
    expect(collect).not.toHaveBeenCalled();
  });

  it('waits while a task runs, and anew when one starts during the quiet time', () => {
    const collect = vi.fn();
    const c = new BurstCollector(10, QUIET_MS, collect);
    c.started(); // a long task, still running
    burst(c, 10);
    vi.advanceTimersByTime(10 * QUIET_MS);
    expect(collect).not.toHaveBeenCalled();
    c.ended();
    vi.advanceTimersByTime(QUIET_MS - 1);
    c.started();
    vi.advanceTimersByTime(10 * QUIET_MS);
    expect(collect).not.toHaveBeenCalled();
    c.ended();
    vi.advanceTimersByTime(QUIET_MS);
    expect(collect).toHaveBeenCalledTimes(1);
  });
});
