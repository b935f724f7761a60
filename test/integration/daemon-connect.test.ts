// A scheduler daemon connects to the registered fleets' agents when it starts, without a call,
// and its first run on them uses those connections: real agents over real mTLS, a real Redis.
// What an agent accepted is read from its metrics (gaxx_agent_connections_total counts the
// metrics endpoint's connections too: each scrape makes one, which is taken off).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentConnector } from '../../scheduler/dispatch/agent-pool.js';
import { SchedulerDaemon } from '../../scheduler/daemon/daemon.js';
import { forgetFleet, newRunId, registerFleet, runAndWait } from '../../scheduler/index.js';
import { startAgent, type AgentProcess } from '../helpers/agent.js';
import { agentConnections, type WatchedAgent } from '../helpers/metrics.js';
import { eventually } from '../helpers/poll.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
let world: SchedulerWorld;
const daemons: SchedulerDaemon[] = [];

type Watched = WatchedAgent<AgentProcess>;

/** The gRPC connections `w`'s agent accepted and has open (its scrapes taken off). */
function connections(w: Watched): Promise<{ accepted: number; open: number }> {
  return agentConnections(w, world.pki.clients.monitor.dir);
}

/** The world's connector, counting the links it opens per address. */
function counting(): { connect: AgentConnector; links: Map<string, number> } {
  const inner = world.connect();
  const links = new Map<string, number>();
  return {
    links,
    connect: (ep) => {
      links.set(ep.address, (links.get(ep.address) ?? 0) + 1);
      return inner(ep);
    },
  };
}

async function startDaemon(connect: AgentConnector): Promise<SchedulerDaemon> {
  const d = await SchedulerDaemon.start({ settings: world.settings, connect, heartbeatMs: 500, log: quiet });
  daemons.push(d);
  return d;
}

beforeAll(async () => {
  // The PKI's agent certificate is spiffe://gaxx/agent/test/h1.
  world = await startSchedulerWorld({ agents: 0, prefix: 'gxconn-' });
});
afterAll(async () => {
  for (const d of daemons) await d.stop(1000);
  await world?.close();
});

describe('a daemon and the registered fleets', () => {
  it('connects to every agent of the registered fleets at its start, and its first run on them takes those connections', async () => {
    const w: Watched = { agent: await startAgent({ certsDir: world.pki.agent.dir }), scrapes: 0 };
    await registerFleet(world.queue.redis, 'test', [{ host: 'h1', address: w.agent.address }]);
    expect(await connections(w)).toEqual({ accepted: 0, open: 0 });
    const c = counting();
    const daemon = await startDaemon(c.connect);
    // No run yet: the daemon connected on its own.
    expect(await eventually(async () => (await connections(w)).accepted >= 1, 60_000)).toBe(true);
    expect(await connections(w)).toEqual({ accepted: 1, open: 1 });
    expect(Object.fromEntries(c.links)).toEqual({ [w.agent.address]: 1 });

    const out = await runAndWait(
      { runId: newRunId(), tasks: [{ taskId: 't1', fleet: 'test', target: { any: true }, argv: ['true'] }] },
      { settings: world.settings, signer: world.signer, timeoutMs: 30_000 },
    );
    expect([...out.results.values()].map((r) => [r.outcome, r.host])).toEqual([['succeeded', w.agent.address]]);
    // The daemon ran it (nothing in this process connected), on the connection it had opened.
    expect(out.inProcess).toBe(false);
    expect(Object.fromEntries(c.links)).toEqual({ [w.agent.address]: 1 });
    expect(await connections(w)).toEqual({ accepted: 1, open: 1 });

    // Stopped, the daemon closes it.
    daemons.splice(daemons.indexOf(daemon), 1);
    await daemon.stop(1000);
    expect(await eventually(async () => (await connections(w)).open === 0, 60_000)).toBe(true);
    await forgetFleet(world.queue.redis, 'test');
    await w.agent.stop();
  });

  it('connects to no agent of a fleet registered after its start until a run needs it, and then once', async () => {
    const c = counting();
    await startDaemon(c.connect);
    const w: Watched = { agent: await startAgent({ certsDir: world.pki.agent.dir }), scrapes: 0 };
    await registerFleet(world.queue.redis, 'test', [{ host: 'h1', address: w.agent.address }]);
    // The daemon is up (its heartbeat is what runAndWait looks for) and has read the fleets: its
    // start read them (none) before its first heartbeat, on the same Redis connection.
    const out = await runAndWait(
      { runId: newRunId(), tasks: [{ taskId: 't2', fleet: 'test', target: { any: true }, argv: ['true'] }] },
      { settings: world.settings, signer: world.signer, timeoutMs: 30_000 },
    );
    expect(out.inProcess).toBe(false);
    expect([...out.results.values()].map((r) => r.outcome)).toEqual(['succeeded']);
    expect(Object.fromEntries(c.links)).toEqual({ [w.agent.address]: 1 });
    expect(await connections(w)).toEqual({ accepted: 1, open: 1 });
  });
});
