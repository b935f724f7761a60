/**
 * A fleet record that gives two hosts one address (anyone who can write to Redis can write one):
 * the task pinned to the host that is really there still runs, and only the other host's task
 * fails, on its own identity (IDENTITY_MISMATCH). The agent's connections are per address and
 * expected identity, and a pinned task's expectation is its own host's, not that of whichever
 * host the record lists first at the address. Real redis-server and agent over mTLS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerFleet } from '../../scheduler/queue/fleets.js';
import { runAndWait } from '../../scheduler/queue/run.js';
import type { AgentEndpoint, AgentLink } from '../../scheduler/dispatch/agent-pool.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

let world: SchedulerWorld;

beforeAll(async () => {
  // makePki's agent certificate is spiffe://gaxx/agent/test/h1.
  world = await startSchedulerWorld({ agents: 1, prefix: 'gxaddr-' });
});

afterAll(async () => {
  await world?.close();
});

describe('two hosts of a fleet recorded at one address', () => {
  it("runs the pinned task of the host that is there; the other host's task fails on its own identity", async () => {
    const address = world.agents[0]?.address as string;
    // h0 sorts first: before, its identity was expected of every task sent to the address.
    await registerFleet(world.queue.redis, 'test', [
      { host: 'h0', address },
      { host: 'h1', address },
    ]);
    const expected: string[] = [];
    const connect = world.connect();
    const counting = (ep: AgentEndpoint): AgentLink => {
      expected.push(`${ep.expect?.fleet}/${ep.expect?.host}`);
      return connect(ep);
    };
    const out = await runAndWait(
      {
        runId: 'dup1',
        tasks: [
          { taskId: 'h1', fleet: 'test', target: { host: 'h1' }, argv: ['true'] },
          { taskId: 'h0', fleet: 'test', target: { host: 'h0' }, argv: ['true'] },
        ],
      },
      { settings: world.settings, signer: world.signer, connect: counting, timeoutMs: 30_000 },
    );
    expect(out.results.get('h1')).toMatchObject({ outcome: 'succeeded', host: address });
    expect(out.results.get('h0')).toMatchObject({ outcome: 'error', reason: 'IDENTITY_MISMATCH' });
    // One connection per expected identity at the address.
    expect([...new Set(expected)].sort()).toEqual(['test/h0', 'test/h1']);
  });
});
