// The worker's agent pool (scheduler/dispatch/agent-pool.ts) probes agents whose breaker is open
// on a timer, and keeps that timer only while some breaker is open or half-open: a worker whose
// agents are all well (a daemon waiting for work) has no timer waking it. A breaker that opens
// starts it, the probe that closes the last one stops it, a failed probe keeps it.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ExecEvent__Output, InfoResponse__Output } from '../../proto/index.js';
import { AgentPool, type AgentEndpoint, type AgentLink } from '../../scheduler/dispatch/agent-pool.js';

const OPEN_MS = 1000;
const PROBE_MS = 200;

/** An agent as the pool sees it through its links: health answers `serving()` at the time of the call. */
function agent(serving: () => boolean) {
  const calls = { health: 0, info: 0 };
  const connect = (_ep: AgentEndpoint): AgentLink => ({
    exec: (): AsyncIterable<ExecEvent__Output> => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error('not used')) }) }),
    info: () => {
      calls.info += 1;
      return Promise.resolve({ capacity: 4 } as InfoResponse__Output);
    },
    health: () => {
      calls.health += 1;
      return serving() ? Promise.resolve('SERVING') : Promise.reject(new Error('connection refused'));
    },
    cancel: () => Promise.resolve(false),
    warm: () => undefined,
    close: () => undefined,
  });
  return { connect, calls };
}

/**
 * Advances the fake clock a probe interval at a time until `done()` (at most `maxMs`): an open
 * period is jittered (half to all of openMs), so when the probe comes varies from run to run.
 */
async function advanceUntil(done: () => boolean, maxMs: number): Promise<void> {
  for (let t = 0; t < maxMs && !done(); t += PROBE_MS) await vi.advanceTimersByTimeAsync(PROBE_MS);
}

describe('AgentPool probe timer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('runs only while a breaker is open or half-open', async () => {
    let up = false;
    const a = agent(() => up);
    const changes: string[] = [];
    const pool = new AgentPool(a.connect, {
      breaker: { failureThreshold: 1, openMs: OPEN_MS, maxOpenMs: OPEN_MS },
      probeIntervalMs: PROBE_MS,
      onBreaker: (address, state) => changes.push(`${address} ${state}`),
    });
    pool.ensure([{ address: 'a:1' }, { address: 'b:1' }]);
    pool.success('a:1');
    expect(vi.getTimerCount()).toBe(0);

    // a's breaker opens: the timer starts, and its probe fails while a is down.
    pool.failure('a:1');
    expect(pool.states().get('a:1')).toBe('open');
    expect(vi.getTimerCount()).toBe(1);
    await advanceUntil(() => a.calls.health > 0, OPEN_MS + PROBE_MS);
    expect(a.calls.health).toBe(1);
    expect(pool.states().get('a:1')).toBe('open');
    expect(vi.getTimerCount()).toBe(1);

    // Up again: the next probe closes it and the timer stops.
    up = true;
    await advanceUntil(() => a.calls.health > 1, OPEN_MS + PROBE_MS);
    expect(a.calls.health).toBe(2);
    expect(pool.states().get('a:1')).toBe('closed');
    expect(vi.getTimerCount()).toBe(0);
    expect(changes).toEqual(['a:1 open', 'a:1 half-open', 'a:1 open', 'a:1 half-open', 'a:1 closed']);

    // Nothing runs while both are closed.
    await vi.advanceTimersByTimeAsync(10 * OPEN_MS);
    expect(a.calls.health).toBe(2);
    pool.close();
  });

  it('keeps the timer while any breaker is not closed, and close() stops it', async () => {
    const a = agent(() => false);
    const pool = new AgentPool(a.connect, { breaker: { failureThreshold: 1, openMs: OPEN_MS, maxOpenMs: OPEN_MS }, probeIntervalMs: PROBE_MS });
    pool.ensure([{ address: 'a:1' }, { address: 'b:1' }]);
    pool.failure('a:1');
    pool.failure('b:1');
    expect(vi.getTimerCount()).toBe(1);
    // b recovers through a call of its own; a is still open.
    pool.success('b:1');
    expect(vi.getTimerCount()).toBe(1);
    pool.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
