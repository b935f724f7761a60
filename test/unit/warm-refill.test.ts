// When the launcher refills its warm sandboxes after a task: at once when none is left or tasks
// come back to back, else at a quiet moment (a sandbox's set-up would compete with the run).
import { describe, expect, it } from 'vitest';
import { REFILL_IDLE_MS } from '../../agent/exec/launcher-protocol.js';
import { refillTiming } from '../../agent/exec/warm-pool.js';

describe('refillTiming', () => {
  it('refills at once when the pool is empty, however far apart tasks come', () => {
    expect(refillTiming(0, Infinity)).toBe('now');
    expect(refillTiming(0, REFILL_IDLE_MS * 10)).toBe('now');
  });

  it('refills at once while tasks come closer together than REFILL_IDLE_MS', () => {
    expect(refillTiming(1, 0)).toBe('now');
    expect(refillTiming(1, REFILL_IDLE_MS - 1)).toBe('now');
  });

  it('leaves the refill to a quiet moment when a sandbox is left and the task came alone (first, or long after the last)', () => {
    expect(refillTiming(1, Infinity)).toBe('idle');
    expect(refillTiming(1, REFILL_IDLE_MS)).toBe('idle');
    expect(refillTiming(3, REFILL_IDLE_MS * 5)).toBe('idle');
  });
});
