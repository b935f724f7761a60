/**
 * An address another fleet's agent takes over (cloud providers reuse IPs; the local provider
 * reuses 127.0.0.x): fleet fc's agent dies while a task of fc runs on it, and fleet fd's agent
 * (another identity, issued by the test PKI) then serves the same address. The scheduler keeps
 * its agents by address AND expected identity: fd's tasks run at once on a closed breaker, never
 * held up by fc's open one (which was probed with fc's identity, refused by fd's agent, for ever);
 * fc's agent is forgotten once no task names it (no more probes), and the breakers a daemon
 * publishes name the identity, so `gaxx status` never shows fc's for fd. Real redis-server,
 * real agents over mTLS, the real worker and daemon.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadCertDir } from '../../certs/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import type { AgentConnector, AgentEndpoint, AgentLink } from '../../scheduler/dispatch/agent-pool.js';
import { SchedulerDaemon } from '../../scheduler/daemon/daemon.js';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { HEARTBEAT_KEY, readBreakers, registerFleet } from '../../scheduler/index.js';
import { requestCancel } from '../../scheduler/queue/cancel.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { startAgent, type AgentProcess } from '../helpers/agent.js';
import { issueCertDir } from '../helpers/pki.js';
import { eventually } from '../helpers/poll.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
let world: SchedulerWorld;
const stops: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  world = await startSchedulerWorld({ agents: 0, prefix: 'gxreuse-' });
});
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});
afterAll(async () => {
  await world?.close();
});

/** An agent of `fleet`/h0 (a certificate of its own from the test CA), at `address` when given. */
async function agentOf(fleet: string, address?: string): Promise<AgentProcess> {
  const dir = join(world.dir, `${fleet}-${Date.now()}`);
  await issueCertDir(world.pki.ca, dir, { identity: { role: 'agent', fleet, host: 'h0' }, hosts: ['127.0.0.1', 'localhost'] });
  const a = await startAgent({ certsDir: dir, ...(address ? { args: ['--listen', address] } : {}) });
  stops.push(() => a.stop());
  return a;
}

/** Tasks running on the agent at `address` (asked with the scheduler's certificate). */
async function running(address: string): Promise<number> {
  const c = AgentClient.connect({ address }, loadCertDir(world.pki.clients.scheduler.dir));
  try {
    return (await c.info()).runningTasks;
  } catch {
    return 0;
  } finally {
    c.close();
  }
}

/** The world's connector, counting Health probes and links per expected identity ('fleet/host'). */
function counting(): { connect: AgentConnector; probes: Map<string, number>; links: Map<string, number> } {
  const inner = world.connect();
  const probes = new Map<string, number>();
  const links = new Map<string, number>();
  const connect = (ep: AgentEndpoint): AgentLink => {
    const id = `${ep.expect?.fleet}/${ep.expect?.host}`;
    links.set(id, (links.get(id) ?? 0) + 1);
    const l = inner(ep);
    const health = l.health.bind(l);
    l.health = () => {
      probes.set(id, (probes.get(id) ?? 0) + 1);
      return health();
    };
    return l;
  };
  return { connect, probes, links };
}

/**
 * fc's agent at an address runs a long task of run `fcRun` and is killed; once `notClosed` says
 * the scheduler's breaker for it opened, fd's agent takes the address. Returns both.
 */
async function takeOver(fcRun: string, notClosed: () => boolean | Promise<boolean>): Promise<{ address: string; fd: AgentProcess }> {
  const fc = await agentOf('fc');
  const address = fc.address;
  await registerFleet(world.queue.redis, 'fc', [{ host: 'h0', address }]);
  await world.queue.enqueueRun({ runId: fcRun, tasks: [{ taskId: 't0', fleet: 'fc', target: { host: 'h0' }, argv: ['sleep', '60'] }] }, world.signer);
  expect(await eventually(async () => (await running(address)) > 0, 30_000)).toBe(true);
  fc.kill('SIGKILL');
  await fc.exited;
  // The fleet is deleted; its task still waits for its agent.
  expect(await eventually(notClosed, 30_000, 50)).toBe(true);
  const fd = await agentOf('fd', address);
  expect(fd.address).toBe(address);
  await registerFleet(world.queue.redis, 'fd', [{ host: 'h0', address }]);
  return { address, fd };
}

describe('an address another fleet took over', () => {
  it('the worker dispatches to the new agent at once, its breaker closed; the old agent is forgotten and no longer probed', async () => {
    const c = counting();
    const w = SchedulerWorker.start({
      settings: world.settings,
      connect: c.connect,
      breaker: { failureThreshold: 2, openMs: 300, maxOpenMs: 1000 },
      // fc's task gives its agent 5 s to come back (before, fd's task waited as long, then ended unreachable).
      policy: { agentGoneMs: 5000, backoffMaxMs: 300 },
      forgetAgentsMs: 1000,
    });
    stops.push(() => w.drain(1000));
    const { address } = await takeOver('reuse1', () => [...w.pool.states().values()].some((s) => s !== 'closed'));
    const fdKey = `fd/h0@${address}`;
    const fcKey = `fc/h0@${address}`;

    // Within fc's task's wait: fd's run runs on fd's agent.
    const fdRun = await world.queue.enqueueRun(
      { runId: 'reuse2', tasks: [{ taskId: 't0', fleet: 'fd', target: { host: 'h0' }, argv: ['echo', 'D'] }] },
      world.signer,
    );
    const fdRes = await waitForRun(world.queue.redis, 'reuse2', fdRun.taskIds, { timeoutMs: 30_000 });
    expect(fdRes.results.get('t0')).toMatchObject({ outcome: 'succeeded', host: address, attempts: 1 });
    expect(w.pool.states().get(fdKey)).toBe('closed');

    // fc's task ends (its agent never came back); then fc's agent is forgotten: no state, no probes.
    const fcRes = await waitForRun(world.queue.redis, 'reuse1', ['t0'], { timeoutMs: 30_000 });
    expect(fcRes.results.get('t0')?.outcome).toMatch(/^(unknown|unreachable)$/);
    expect(await eventually(() => !w.pool.states().has(fcKey), 30_000, 50)).toBe(true);
    const probed = c.probes.get('fc/h0') ?? 0;
    const linked = c.links.get('fc/h0') ?? 0;
    // More work on the address: fc's agent is asked nothing, neither by a probe nor a new link.
    const again = await world.queue.enqueueRun(
      { runId: 'reuse3', tasks: [{ taskId: 't0', fleet: 'fd', target: { any: true }, argv: ['true'] }] },
      world.signer,
    );
    const res3 = await waitForRun(world.queue.redis, 'reuse3', again.taskIds, { timeoutMs: 30_000 });
    expect(res3.results.get('t0')).toMatchObject({ outcome: 'succeeded', host: address });
    expect(c.probes.get('fc/h0') ?? 0).toBe(probed);
    expect(c.links.get('fc/h0') ?? 0).toBe(linked);
    expect(c.probes.get('fd/h0') ?? 0).toBe(0);
  }, 180_000);

  it("a daemon runs the new fleet's task at once, and publishes the new agent's breaker closed under its own identity", async () => {
    const d = await SchedulerDaemon.start({ settings: world.settings, connect: world.connect(), heartbeatMs: 300, log: quiet });
    stops.push(() => d.stop(1000));
    const published = async (): Promise<Map<string, string>> =>
      readBreakers(world.queue.redis, await world.queue.redis.zrangebyscore(HEARTBEAT_KEY, Date.now(), '+inf'));
    const { address } = await takeOver('reuse4', async () => [...(await published()).values()].some((s) => s !== 'closed'));

    const fdRun = await world.queue.enqueueRun(
      { runId: 'reuse5', tasks: [{ taskId: 't0', fleet: 'fd', target: { host: 'h0' }, argv: ['echo', 'D'] }] },
      world.signer,
    );
    const res = await waitForRun(world.queue.redis, 'reuse5', fdRun.taskIds, { timeoutMs: 30_000 });
    expect(res.results.get('t0')).toMatchObject({ outcome: 'succeeded', host: address, attempts: 1 });
    // What `gaxx status fd` reads: fd's agent closed, fc's (still waited for by its task) apart.
    expect(await eventually(async () => (await published()).get(`fd/h0@${address}`) === 'closed', 10_000, 50)).toBe(true);
    expect((await published()).get(`fc/h0@${address}`)).not.toBe('closed');
    await requestCancel(world.queue.redis, 'reuse4');
  }, 180_000);
});
