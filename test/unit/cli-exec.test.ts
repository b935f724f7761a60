import { describe, expect, it } from 'vitest';
import { agentAddress, exitCodeOf } from '../../cli/commands/exec.js';

const exit = (o: Partial<{ code: number; signal: string; reason: string }>) => ({
  code: 0,
  signal: '',
  durationMs: 1,
  truncated: false,
  outputCapped: false,
  stdoutBytes: 0,
  stderrBytes: 0,
  reason: '',
  error: '',
  ...o,
});

describe('gaxx exec helpers', () => {
  it('adds the default port when the address has none', () => {
    expect(agentAddress('10.0.0.5', 8088, 'exec')).toBe('10.0.0.5:8088');
    expect(agentAddress('h1.test:9000', 8088, 'exec')).toBe('h1.test:9000');
    expect(agentAddress('[::1]', 8088, 'exec')).toBe('[::1]:8088');
    expect(agentAddress('::1', 8088, 'exec')).toBe('[::1]:8088');
    expect(agentAddress('[::1]:7', 8088, 'exec')).toBe('[::1]:7');
    expect(() => agentAddress('a b:[x', 8088, 'exec')).toThrow(expect.objectContaining({ code: 'USAGE' }));
    // The help named is the command's own.
    expect(() => agentAddress(':x', 8088, 'run')).toThrow(expect.objectContaining({ message: expect.stringMatching(/\(see 'gaxx run --help'\)$/) }));
  });

  it('maps the remote exit: code as is, 128+N for signal N, 130 when cancelled', () => {
    expect(exitCodeOf(exit({ code: 3 }))).toBe(3);
    expect(exitCodeOf(exit({ code: -1, signal: 'SIGKILL' }))).toBe(137);
    expect(exitCodeOf(exit({ code: -1, signal: 'SIGTERM' }))).toBe(143);
    expect(exitCodeOf(exit({ code: -1, signal: 'SIGTERM', reason: 'cancelled' }))).toBe(130);
    // Lost with the agent or its launcher: the end is unknown, as UNAVAILABLE (not 255, not 137).
    expect(exitCodeOf(exit({ code: -1, reason: 'lost_in_restart' }))).toBe(12);
    expect(exitCodeOf(exit({ code: -1, signal: 'SIGKILL', reason: 'launcher_lost' }))).toBe(12);
  });

  it('never exits 0 for a task the agent stopped, even when it caught the SIGTERM and exited 0', () => {
    for (const reason of ['timeout', 'output_cap', 'shutdown']) {
      expect(exitCodeOf(exit({ code: 0, reason })), reason).toBe(143);
      // Its own non-zero code, or the signal that ended it, as before.
      expect(exitCodeOf(exit({ code: 3, reason })), reason).toBe(3);
      expect(exitCodeOf(exit({ code: -1, signal: 'SIGKILL', reason })), reason).toBe(137);
    }
    expect(exitCodeOf(exit({ code: 0 }))).toBe(0);
    // Ended on its own with its output past the cap (no reason: the stop reached nothing): its own code.
    expect(exitCodeOf({ ...exit({ code: 0 }), truncated: true, outputCapped: true })).toBe(0);
  });
});
