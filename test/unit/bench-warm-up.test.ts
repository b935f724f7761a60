// bench/lib/profile.ts: the warm-up runs blocks until the time per operation stops falling, and
// never beyond its bound. The decision is tested on given times; warmUp on counted operations.
import { describe, expect, it } from 'vitest';
import { stillWarming, warmUp } from '../../bench/lib/profile.js';

describe('bench warm-up', () => {
  it('goes on while either of the last two blocks beats the best before it by more than 5%', () => {
    expect(stillWarming([])).toBe(true);
    expect(stillWarming([3, 3])).toBe(true);
    // Flat from the start: three blocks, then done.
    expect(stillWarming([3, 3, 3])).toBe(false);
    // An agent's JIT: falling for a while, then flat within noise.
    const agent = [3.4, 2.6, 2.35, 2.04, 1.87, 1.81, 1.85];
    expect(agent.map((_, i) => stillWarming(agent.slice(0, i + 1)))).toEqual([true, true, true, true, true, true, false]);
    // The last block beat the best before it: not yet.
    expect(stillWarming([3, 3, 3, 2])).toBe(true);
    // The one before the last did: not yet either.
    expect(stillWarming([3, 3, 2, 2])).toBe(true);
    // A slower block after the best is flat, not warming.
    expect(stillWarming([2, 1, 1.5, 1.2])).toBe(false);
  });

  it('runs the minimum, then whole blocks while still warming, never beyond the bound', async () => {
    let calls = 0;
    const op = async (): Promise<void> => {
      calls++;
    };
    // The bound cuts the last block: 10, 10 and the 5 left, whatever the times.
    const w = await warmUp(op, 10, 25, 25);
    expect(calls).toBe(25);
    expect(w.ops).toBe(25);
    expect(Number.isFinite(w.firstMsPerOp) && w.firstMsPerOp >= 0).toBe(true);
    expect(Number.isFinite(w.lastMsPerOp) && w.lastMsPerOp >= 0).toBe(true);
    // Past the minimum, three blocks at least (stillWarming), at most the bound.
    calls = 0;
    const v = await warmUp(op, 10, 5, 1000);
    expect(v.ops).toBe(calls);
    expect(v.ops).toBeGreaterThanOrEqual(30);
    expect(v.ops).toBeLessThanOrEqual(1000);
    expect(v.ops % 10).toBe(0);
    const none = await warmUp(op, 10, 0, 0);
    expect(none.ops).toBe(0);
    expect(Number.isNaN(none.firstMsPerOp)).toBe(true);
  });
});
