// warmingConnector's bookkeeping: which link each connect gets, what warm opens, what close
// closes. The links here are stand-ins that only record what was done to them (the connections
// themselves are tested against real agents: scheduler.test.ts, daemon-connect.test.ts).
import { describe, expect, it } from 'vitest';
import type { AgentEndpoint, AgentLink } from '../../scheduler/dispatch/agent-pool.js';
import { warmingConnector } from '../../scheduler/dispatch/connector.js';

interface Made {
  ep: AgentEndpoint;
  warmed: boolean;
  closed: boolean;
  link: AgentLink;
}

function recording(): { made: Made[]; connect: (ep: AgentEndpoint) => AgentLink } {
  const made: Made[] = [];
  return {
    made,
    connect: (ep) => {
      const m = { ep, warmed: false, closed: false } as Made;
      m.link = {
        exec: () => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true as const, value: undefined }) }) }),
        info: () => Promise.reject(new Error('not here')),
        health: () => Promise.resolve('SERVING'),
        cancel: () => Promise.resolve(false),
        warm: () => void (m.warmed = true),
        close: () => void (m.closed = true),
      };
      made.push(m);
      return m.link;
    },
  };
}

const a1 = { address: '127.0.0.1:1', expect: { fleet: 'f', host: 'h1' } };
const a2 = { address: '127.0.0.1:2', expect: { fleet: 'f', host: 'h2' } };

describe('warmingConnector', () => {
  it('hands a warmed link to the first connect for its endpoint only', () => {
    const r = recording();
    const w = warmingConnector(r.connect);
    w.warm([a1, a2]);
    expect(r.made.map((m) => [m.ep.address, m.warmed])).toEqual([
      [a1.address, true],
      [a2.address, true],
    ]);
    expect(w.connect(a1)).toBe(r.made[0]?.link);
    // The same address with another identity is another link.
    const other = w.connect({ address: a1.address, expect: { fleet: 'g', host: 'h1' } });
    expect(other).toBe(r.made[2]?.link);
    // Taken once: the next connect gets a link of its own.
    expect(w.connect(a1)).toBe(r.made[3]?.link);
    expect(r.made).toHaveLength(4);
  });

  it('warms no endpoint that was already asked for (its link is out) or is warm already', () => {
    const r = recording();
    const w = warmingConnector(r.connect);
    const taken = w.connect(a1);
    w.warm([a1, a2, a2]);
    expect(r.made.map((m) => [m.ep.address, m.warmed])).toEqual([
      [a1.address, false],
      [a2.address, true],
    ]);
    expect(w.connect(a1)).not.toBe(taken);
  });

  it('closes the warmed links nobody took, and not the ones handed out', () => {
    const r = recording();
    const w = warmingConnector(r.connect);
    w.warm([a1, a2]);
    w.connect(a1);
    w.close();
    expect(r.made.map((m) => [m.ep.address, m.closed])).toEqual([
      [a1.address, false],
      [a2.address, true],
    ]);
    // After close, a connect opens a new link.
    w.connect(a2);
    expect(r.made).toHaveLength(3);
  });
});
