// The worker's agent pool (scheduler/dispatch/agent-pool.ts) keeps one client per agent address
// and expected identity: two hosts recorded at one address get a client each, pinning its own
// host, and the same address and identity always get the same client.
import { describe, expect, it } from 'vitest';
import type { ExecEvent__Output, InfoResponse__Output } from '../../proto/index.js';
import { AgentPool, type AgentEndpoint, type AgentLink } from '../../scheduler/dispatch/agent-pool.js';

function links() {
  const made: AgentEndpoint[] = [];
  const connect = (ep: AgentEndpoint): AgentLink => {
    made.push(ep);
    return {
      exec: (): AsyncIterable<ExecEvent__Output> => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error('not used')) }) }),
      info: () => Promise.resolve({ capacity: 1 } as InfoResponse__Output),
      health: () => Promise.resolve('SERVING'),
      cancel: () => Promise.resolve(false),
      warm: () => undefined,
      close: () => undefined,
    };
  };
  return { made, connect };
}

describe('AgentPool links', () => {
  it('are keyed by address and expected identity', () => {
    const l = links();
    const pool = new AgentPool(l.connect);
    const h0 = { address: '127.0.0.3:8088', expect: { fleet: 'a3', host: 'h0' } };
    const h1 = { address: '127.0.0.3:8088', expect: { fleet: 'a3', host: 'h1' } };
    const bare = { address: h0.address };
    pool.use([h0, h1, bare]);
    const a = pool.link(h0);
    const b = pool.link(h1);
    expect(a).not.toBe(b);
    expect(pool.link({ address: '127.0.0.3:8088', expect: { fleet: 'a3', host: 'h1' } })).toBe(b);
    expect(pool.link(bare)).not.toBe(a);
    expect(l.made).toEqual([h0, h1, { address: h0.address }]);
    pool.close();
  });
});
