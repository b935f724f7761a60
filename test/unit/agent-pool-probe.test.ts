// The worker's agent pool (scheduler/dispatch/agent-pool.ts) probes agents whose breaker is open
// on a timer, and keeps that timer only while some breaker is open or half-open: a worker whose
// agents are all well (a daemon waiting for work) has no timer waking it. A breaker that opens
// starts it, the probe that closes the last one stops it, a failed probe keeps it. Agents are
// keyed by address and expected identity, and forgotten once no task names them.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ExecEvent__Output, InfoResponse__Output } from '../../proto/index.js';
import { AgentPool, agentKey, type AgentEndpoint, type AgentLink } from '../../scheduler/dispatch/agent-pool.js';

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
      onBreaker: (agent, state) => changes.push(`${agent.address} ${state}`),
    });
    const [A, B] = [{ address: 'a:1' }, { address: 'b:1' }];
    pool.use([A, B]);
    pool.success(A);
    expect(vi.getTimerCount()).toBe(0);

    // a's breaker opens: the timer starts, and its probe fails while a is down.
    pool.failure(A);
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
    const [A, B] = [{ address: 'a:1' }, { address: 'b:1' }];
    pool.use([A, B]);
    pool.failure(A);
    pool.failure(B);
    expect(vi.getTimerCount()).toBe(1);
    // b recovers through a call of its own; a is still open.
    pool.success(B);
    expect(vi.getTimerCount()).toBe(1);
    pool.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});

// An address another fleet's agent took over (providers reuse addresses): the new agent's
// state is its own, and the old agent's is forgotten once no task names it.
describe('AgentPool agents by address and identity', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** Links whose health answers SERVING only for the identity `serving()` names; each probe and close counted by agentKey. */
  function identities(serving: () => string) {
    const health = new Map<string, number>();
    const closed = new Map<string, number>();
    const connect = (ep: AgentEndpoint): AgentLink => {
      const key = agentKey(ep);
      return {
        exec: (): AsyncIterable<ExecEvent__Output> => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error('not used')) }) }),
        info: () => Promise.resolve({ capacity: 1 } as InfoResponse__Output),
        health: () => {
          health.set(key, (health.get(key) ?? 0) + 1);
          return ep.expect?.fleet === serving() ? Promise.resolve('SERVING') : Promise.reject(new Error('identity mismatch'));
        },
        cancel: () => Promise.resolve(false),
        warm: () => undefined,
        close: () => void closed.set(key, (closed.get(key) ?? 0) + 1),
      };
    };
    return { connect, health, closed };
  }

  it("a new identity at an address starts closed; the old one's open breaker is probed with its own identity, then forgotten", async () => {
    let at = 'fc';
    const l = identities(() => at);
    const FORGET_MS = 5 * OPEN_MS;
    const pool = new AgentPool(l.connect, {
      breaker: { failureThreshold: 1, openMs: OPEN_MS, maxOpenMs: OPEN_MS },
      probeIntervalMs: PROBE_MS,
      forgetUnusedMs: FORGET_MS,
    });
    const fc = { address: '127.0.0.5:8088', expect: { fleet: 'fc', host: 'h0' } };
    const fd = { address: '127.0.0.5:8088', expect: { fleet: 'fd', host: 'h0' } };
    const releaseFc = pool.use([fc]);
    pool.link(fc);
    pool.success(fc);
    // fc's agent dies mid-task; fd's agent now holds the address.
    pool.failure(fc);
    at = 'fd';
    const releaseFd = pool.use([fd]);
    expect(pool.snapshot([fd]).get(fd.address)?.breaker).toBe('closed');
    expect(pool.states()).toEqual(
      new Map([
        ['fc/h0@127.0.0.5:8088', 'open'],
        ['fd/h0@127.0.0.5:8088', 'closed'],
      ]),
    );
    await advanceUntil(() => (l.health.get(agentKey(fc)) ?? 0) > 0, OPEN_MS + PROBE_MS);
    expect(pool.states().get(agentKey(fc))).toBe('open');
    expect(l.health.get(agentKey(fd))).toBeUndefined();

    // Its task ends: fc is forgotten (its client closed, its probes stop); fd stays known.
    releaseFc();
    await advanceUntil(() => !pool.states().has(agentKey(fc)), FORGET_MS + 2 * PROBE_MS);
    expect([...pool.states().keys()]).toEqual([agentKey(fd)]);
    expect(l.closed.get(agentKey(fc))).toBeGreaterThan(0);
    expect(vi.getTimerCount()).toBe(0);
    const probes = l.health.get(agentKey(fc));
    await vi.advanceTimersByTimeAsync(10 * OPEN_MS);
    expect(l.health.get(agentKey(fc))).toBe(probes);
    expect(() => pool.link(fc)).toThrow();
    releaseFd();
    pool.close();
  });

  it('an agent some task still names is not forgotten, however long', async () => {
    const l = identities(() => 'fd');
    const pool = new AgentPool(l.connect, { forgetUnusedMs: OPEN_MS });
    const fd = { address: '127.0.0.5:8088', expect: { fleet: 'fd', host: 'h0' } };
    const first = pool.use([fd]);
    const second = pool.use([fd]);
    first();
    first();
    await vi.advanceTimersByTimeAsync(3 * OPEN_MS);
    expect(pool.states().get(agentKey(fd))).toBe('closed');
    second();
    await vi.advanceTimersByTimeAsync(OPEN_MS);
    expect(pool.states().size).toBe(0);
    pool.close();
  });
});
