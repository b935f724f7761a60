// How an agent's Exit reads as a task outcome (scheduler/client/outcome.ts), the one rule for
// queued and direct tasks.
import { describe, expect, it } from 'vitest';
import { outcomeOf } from '../../scheduler/client/index.js';
import type { Exit__Output } from '../../proto/index.js';

const exit = (e: Partial<Exit__Output>): Exit__Output =>
  ({ code: 0, signal: '', durationMs: 1, truncated: false, stdoutBytes: 0, stderrBytes: 0, reason: '', error: '', outputCapped: false, ...e }) as Exit__Output;

describe('outcomeOf', () => {
  it('reads each end as its outcome', () => {
    expect(outcomeOf(exit({}))).toBe('succeeded');
    expect(outcomeOf(exit({ code: 3 }))).toBe('failed');
    expect(outcomeOf(exit({ code: -1, signal: 'SIGKILL' }))).toBe('killed');
    expect(outcomeOf(exit({ code: -1, signal: 'SIGTERM', reason: 'timeout' }))).toBe('timeout');
    expect(outcomeOf(exit({ code: -1, signal: 'SIGTERM', reason: 'cancelled' }))).toBe('cancelled');
    expect(outcomeOf(exit({ code: -1, reason: 'lost_in_restart' }))).toBe('unknown');
  });

  it('takes a task the agent stopped at its output cap for killed, also when it caught the signal and exited with a code', () => {
    expect(outcomeOf(exit({ code: -1, signal: 'SIGTERM', truncated: true, outputCapped: true, reason: 'output_cap' }))).toBe('killed');
    expect(outcomeOf(exit({ code: 0, truncated: true, outputCapped: true, reason: 'output_cap' }))).toBe('killed');
    expect(outcomeOf(exit({ code: 1, truncated: true, outputCapped: true, reason: 'output_cap' }))).toBe('killed');
  });

  it("takes a task that ended on its own with its output past the cap (no reason: the agent's stop reached nothing) for its own outcome", () => {
    expect(outcomeOf(exit({ code: 0, truncated: true, outputCapped: true }))).toBe('succeeded');
    expect(outcomeOf(exit({ code: 2, truncated: true, outputCapped: true }))).toBe('failed');
    expect(outcomeOf(exit({ code: -1, signal: 'SIGPIPE', truncated: true, outputCapped: true }))).toBe('killed');
  });
});
