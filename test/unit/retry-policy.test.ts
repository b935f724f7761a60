// The one retry policy: equal-jitter backoff, busy waits that follow the agent's hint, which
// codes are transport failures; and the quiet log that counts repeats instead of printing them.
import { describe, expect, it } from 'vitest';
import { GaxxError } from '../../proto/index.js';
import { QuietLog } from '../../scheduler/dispatch/quiet-log.js';
import {
  backoffDelay,
  busyDelay,
  isTransportFailure,
  refusalKind,
  refusesWork,
  retryAfterHint,
  retryPolicy,
  RETRY_DEFAULTS,
} from '../../scheduler/dispatch/retry-policy.js';

describe('retry policy', () => {
  it('backs off with equal jitter: never below half the exponential delay, capped', () => {
    const o = { baseMs: 100, maxMs: 1000 };
    expect([backoffDelay(1, o, () => 0), backoffDelay(1, o, () => 1)]).toEqual([50, 100]);
    expect([backoffDelay(5, o, () => 0), backoffDelay(5, o, () => 1)]).toEqual([500, 1000]);
  });

  it('waits for a busy agent as long as its hint says, else a short growing backoff', () => {
    const p = retryPolicy();
    expect(busyDelay(1, 50, p)).toBe(50);
    expect(busyDelay(1, 0, p)).toBe(1);
    expect(busyDelay(1, 1e9, p)).toBe(p.busyMaxDelayMs * 5);
    expect(busyDelay(1, undefined, p, () => 1)).toBe(20);
    expect(busyDelay(50, undefined, p, () => 1)).toBe(p.busyMaxDelayMs);
  });

  it('reads the hint the agent client put in the error, and nothing else', () => {
    expect(retryAfterHint(new GaxxError('RESOURCE_EXHAUSTED', 'full', { details: { retryAfterMs: 75 } }))).toBe(75);
    expect(retryAfterHint(new GaxxError('RESOURCE_EXHAUSTED', 'full'))).toBeUndefined();
    expect(retryAfterHint(new Error('x'))).toBeUndefined();
  });

  it('tells transport failures from agent verdicts, and takes overrides over its defaults', () => {
    expect(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL', 'CANCELLED'].every((c) => isTransportFailure(c as never))).toBe(true);
    expect(['RESOURCE_EXHAUSTED', 'PERMISSION_DENIED', 'INVALID_ARGUMENT'].some((c) => isTransportFailure(c as never))).toBe(false);
    expect(retryPolicy({ agentGoneMs: 5, attempts: undefined })).toEqual({ ...RETRY_DEFAULTS, agentGoneMs: 5 });
  });
});

describe('QuietLog', () => {
  it('logs a repeated error once per interval, with the count of repeats', () => {
    let now = 0;
    const lines: Array<Record<string, unknown>> = [];
    const log = { info: () => undefined, error: () => undefined, warn: (o: object) => void lines.push(o as Record<string, unknown>) };
    const q = new QuietLog(log, 1000, () => now);
    for (let i = 0; i < 1000; i++) q.warn('worker error', 'Connection is closed.');
    expect(lines).toEqual([{ err: 'Connection is closed.' }]);
    now = 1500;
    q.warn('worker error', 'Connection is closed.');
    expect(lines[1]).toMatchObject({ err: 'Connection is closed.', repeated: 999 });
    q.warn('worker error', 'another');
    expect(lines).toHaveLength(3);
  });

  it('takes a warning whose words change for a repeat when its subject is the same', () => {
    let t = 0;
    const lines: object[] = [];
    const q = new QuietLog({ info: () => undefined, warn: (o) => void lines.push(o), error: () => undefined }, 60_000, () => t);
    q.warn('agent refuses new tasks', '100k free', { agent: 'a' }, 'a/disk-reserve');
    q.warn('agent refuses new tasks', '90k free', { agent: 'a' }, 'a/disk-reserve');
    q.warn('agent refuses new tasks', '90k free', { agent: 'b' }, 'b/disk-reserve');
    expect(lines).toHaveLength(2);
    t = 60_000;
    q.warn('agent refuses new tasks', '80k free', { agent: 'a' }, 'a/disk-reserve');
    expect(lines[2]).toMatchObject({ err: '80k free', agent: 'a', repeated: 1 });
  });
});

describe('refusal kinds', () => {
  it('says what the agent says is exhausted; an agent that does not say it has its slots full only in words', () => {
    expect(refusalKind(new GaxxError('RESOURCE_EXHAUSTED', 'x', { details: { refusal: 'disk-reserve' } }))).toBe('disk-reserve');
    expect(refusalKind(new GaxxError('RESOURCE_EXHAUSTED', 'x', { details: { refusal: 'slots' } }))).toBe('slots');
    expect(refusalKind(new GaxxError('RESOURCE_EXHAUSTED', 'agent 10.0.0.1:8088: agent is running 16 tasks, its capacity'))).toBe('slots');
    expect(refusalKind(new GaxxError('RESOURCE_EXHAUSTED', 'agent 10.0.0.1:8088: rate limit exceeded; retry in 40 ms'))).toBe('refused');
  });

  it('takes any code with the agent’s reason as a refusal of new work (a read-only disk is FILE_ACCESS), and no other', () => {
    expect(refusesWork(new GaxxError('RESOURCE_EXHAUSTED', 'x'))).toBe(true);
    expect(refusesWork(new GaxxError('FILE_ACCESS', 'x', { details: { refusal: 'disk', retryAfterMs: 5000 } }))).toBe(true);
    expect(refusesWork(new GaxxError('UNAVAILABLE', 'x', { details: { refusal: 'disk' } }))).toBe(true);
    expect(refusesWork(new GaxxError('FILE_ACCESS', 'x'))).toBe(false);
    expect(refusesWork(new GaxxError('UNAVAILABLE', 'x', { details: { requestSent: true } }))).toBe(false);
    expect(refusesWork(new Error('x'))).toBe(false);
  });
});
