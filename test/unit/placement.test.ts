import { describe, expect, it } from 'vitest';
import { Breaker } from '../../scheduler/dispatch/breaker.js';
import { backoffDelay } from '../../scheduler/dispatch/retry-policy.js';
import { place, type AgentView } from '../../scheduler/dispatch/placement.js';

const agent = (address: string, over: Partial<AgentView> = {}): AgentView => ({ address, breaker: 'closed', reopensAt: 0, capacity: 4, inflight: 0, ...over });
const snap = (...a: AgentView[]): Map<string, AgentView> => new Map(a.map((x) => [x.address, x]));

describe('placement', () => {
  it('sends a pinned task to its agent, or waits when busy or open', () => {
    expect(place({ pinned: 'a', candidates: ['a'] }, snap(agent('a')))).toEqual({ kind: 'agent', address: 'a' });
    expect(place({ pinned: 'a', candidates: ['a'] }, snap(agent('a', { inflight: 4 })))).toEqual({ kind: 'wait', reason: 'busy' });
    expect(place({ pinned: 'a', candidates: ['a'] }, snap(agent('a', { breaker: 'open', reopensAt: 50 })))).toEqual({
      kind: 'wait',
      reason: 'breaker-open',
      until: 50,
    });
    expect(place({ pinned: 'x', candidates: ['a'] }, snap(agent('a')))).toEqual({ kind: 'none', reason: 'unknown-agent' });
  });

  it('picks the least-loaded healthy agent with a free slot', () => {
    const s = snap(
      agent('a', { inflight: 3 }),
      agent('b', { inflight: 1 }),
      agent('c', { inflight: 0, breaker: 'open' }),
      agent('d', { capacity: 1, inflight: 1 }),
    );
    expect(place({ candidates: ['a', 'b', 'c', 'd'] }, s)).toEqual({ kind: 'agent', address: 'b' });
  });

  it('weighs load by capacity', () => {
    const s = snap(agent('small', { capacity: 2, inflight: 1 }), agent('big', { capacity: 16, inflight: 4 }));
    expect(place({ candidates: ['small', 'big'] }, s)).toEqual({ kind: 'agent', address: 'big' });
  });

  it('spreads ties by seed', () => {
    const s = snap(agent('a'), agent('b'));
    const picks = new Set([0, 1, 2, 3].map((seed) => (place({ candidates: ['a', 'b'], seed }, s) as { address: string }).address));
    expect(picks).toEqual(new Set(['a', 'b']));
  });

  it('returns a re-dispatched task to the agent it was placed on, unless that agent is open', () => {
    const s = snap(agent('a', { inflight: 3 }), agent('b'));
    expect(place({ candidates: ['a', 'b'], placedOn: 'a' }, s)).toEqual({ kind: 'agent', address: 'a' });
    expect(place({ candidates: ['a', 'b'], placedOn: 'a' }, snap(agent('a', { inflight: 4 }), agent('b')))).toEqual({ kind: 'wait', reason: 'busy' });
    expect(place({ candidates: ['a', 'b'], placedOn: 'a' }, snap(agent('a', { breaker: 'open' }), agent('b')))).toEqual({ kind: 'agent', address: 'b' });
  });

  it('avoids agents the task failed on while others are free', () => {
    const s = snap(agent('a'), agent('b', { inflight: 2 }));
    expect(place({ candidates: ['a', 'b'], failedOn: new Set(['a']) }, s)).toEqual({ kind: 'agent', address: 'b' });
    expect(place({ candidates: ['a', 'b'], failedOn: new Set(['a', 'b']) }, s)).toEqual({ kind: 'agent', address: 'a' });
  });

  it('waits when every agent is full or open, and says so', () => {
    expect(place({ candidates: ['a', 'b'] }, snap(agent('a', { inflight: 4 }), agent('b', { breaker: 'open' })))).toEqual({ kind: 'wait', reason: 'busy' });
    expect(place({ candidates: ['a', 'b'] }, snap(agent('a', { breaker: 'open', reopensAt: 9 }), agent('b', { breaker: 'open', reopensAt: 7 })))).toEqual({
      kind: 'wait',
      reason: 'breaker-open',
      until: 7,
    });
    expect(place({ candidates: ['z'] }, snap(agent('a')))).toEqual({ kind: 'none', reason: 'no-agents' });
  });

  it('sends an any-host task an agent refused to another with room, its earlier placement too', () => {
    const s = snap(agent('a'), agent('b', { inflight: 3 }));
    const refusedBy = new Map([['a', 100]]);
    expect(place({ candidates: ['a', 'b'], refusedBy, now: 50 }, s)).toEqual({ kind: 'agent', address: 'b' });
    expect(place({ candidates: ['a', 'b'], placedOn: 'a', refusedBy, now: 50 }, s)).toEqual({ kind: 'agent', address: 'b' });
    // The agent's own refusal (the pool's view: it cannot take work) counts the same for every task.
    expect(place({ candidates: ['a', 'b'], now: 50 }, snap(agent('a', { refusingUntil: 100 }), agent('b', { inflight: 3 })))).toEqual({
      kind: 'agent',
      address: 'b',
    });
    // Once the hint passed, it is asked again.
    expect(place({ candidates: ['a', 'b'], refusedBy, now: 100 }, s)).toEqual({ kind: 'agent', address: 'a' });
  });

  it('waits for a refusing agent only when every agent refuses the task or is full', () => {
    const refusedBy = new Map([
      ['a', 100],
      ['b', 70],
    ]);
    expect(place({ candidates: ['a', 'b'], refusedBy, now: 50 }, snap(agent('a'), agent('b')))).toEqual({ kind: 'wait', reason: 'refused', until: 70 });
    // One full with this worker's own tasks: a slot frees there.
    expect(place({ candidates: ['a', 'b'], refusedBy: new Map([['a', 100]]), now: 50 }, snap(agent('a'), agent('b', { inflight: 4 })))).toEqual({
      kind: 'wait',
      reason: 'busy',
    });
    expect(place({ pinned: 'a', candidates: ['a', 'b'], now: 50 }, snap(agent('a', { refusingUntil: 90 }), agent('b')))).toEqual({
      kind: 'wait',
      reason: 'refused',
      until: 90,
    });
  });

  it('weighs an agent whose capacity is only assumed as the known ones, and waits for it rather than overfill them', () => {
    // b answered Info (16 slots), a not yet (assumed 1, full): a is as loaded as b, not full.
    const s = (bInflight: number) => snap(agent('a', { capacity: 1, assumed: true, inflight: 1 }), agent('b', { capacity: 16, inflight: bInflight }));
    expect(place({ candidates: ['a', 'b'] }, s(2))).toEqual({ kind: 'wait', reason: 'busy' });
    expect(place({ candidates: ['a', 'b'] }, s(0))).toEqual({ kind: 'agent', address: 'b' });
    // Nothing known: the assumed capacity is what there is.
    const none = snap(agent('a', { capacity: 1, assumed: true, inflight: 1 }), agent('b', { capacity: 1, assumed: true }));
    expect(place({ candidates: ['a', 'b'] }, none)).toEqual({ kind: 'agent', address: 'b' });
  });
});

describe('breaker', () => {
  const opts = { failureThreshold: 3, openMs: 100, maxOpenMs: 1000 };
  it('opens after N consecutive transport failures, probes when half-open, closes on success', () => {
    const b = new Breaker(opts, () => 0.5);
    b.recordFailure(0);
    b.recordFailure(1);
    expect(b.state(2)).toBe('closed');
    b.recordFailure(2);
    expect(b.state(3)).toBe('open');
    expect(b.allows(3)).toBe(false);
    expect(b.takeProbe(3)).toBe(false);
    const at = b.reopensAt();
    expect(at).toBeGreaterThan(2);
    expect(b.state(at)).toBe('half-open');
    expect(b.allows(at)).toBe(false);
    expect(b.takeProbe(at)).toBe(true);
    expect(b.takeProbe(at)).toBe(false);
    b.recordSuccess();
    expect(b.state(at)).toBe('closed');
  });

  it('a success resets the count; a failed probe re-opens for longer', () => {
    const b = new Breaker(opts, () => 1);
    b.recordFailure(0);
    b.recordFailure(0);
    b.recordSuccess();
    b.recordFailure(0);
    expect(b.state(0)).toBe('closed');
    b.recordFailure(0);
    b.recordFailure(0);
    const first = b.reopensAt();
    expect(b.takeProbe(first)).toBe(true);
    b.recordFailure(first);
    expect(b.state(first)).toBe('open');
    expect(b.reopensAt() - first).toBeGreaterThan(first);
  });

  it('backoff grows exponentially, is capped, and is jittered within [half, full]', () => {
    const o = { baseMs: 100, maxMs: 1000 };
    expect(backoffDelay(1, o, () => 0)).toBe(50);
    expect(backoffDelay(1, o, () => 1)).toBe(100);
    expect(backoffDelay(3, o, () => 1)).toBe(400);
    expect(backoffDelay(10, o, () => 1)).toBe(1000);
    expect(backoffDelay(10, o, () => 0)).toBe(500);
    const spread = new Set(Array.from({ length: 20 }, () => backoffDelay(4, o)));
    expect(spread.size).toBeGreaterThan(1);
  });
});
