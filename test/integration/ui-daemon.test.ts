/**
 * The scheduler daemon serves the local metrics collection and dashboard beside its own
 * metrics endpoint: /metrics on the dashboard's port holds the scheduler's series and the
 * fleet's agent series labelled with fleet and host; the daemon's own endpoint still answers;
 * the page needs the token; breaker states show once the daemon has dispatched to an agent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCertDir } from '../../certs/index.js';
import { Collector } from '../../scheduler/ui/collector.js';
import { SchedulerDaemon } from '../../scheduler/daemon/daemon.js';
import { parsePrometheusText } from '../../scheduler/ui/prom-text.js';
import { newRunId, registerFleet, runAndWait } from '../../scheduler/index.js';
import { startAgent, type AgentProcess } from '../helpers/agent.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
let world: SchedulerWorld;
let agent: AgentProcess;
let daemon: SchedulerDaemon;

beforeAll(async () => {
  world = await startSchedulerWorld({ agents: 0, prefix: 'gxuid-' });
  agent = await startAgent({ certsDir: world.pki.agent.dir });
  await registerFleet(world.queue.redis, 'test', [{ host: 'h1', address: agent.address, metrics: `127.0.0.1:${agent.metricsPort}` }]);
  daemon = await SchedulerDaemon.start({
    settings: world.settings,
    connect: world.connect(),
    metricsListen: '127.0.0.1:0',
    ui: { listen: '127.0.0.1:0', creds: loadCertDir(world.pki.clients.monitor.dir), scrapeIntervalMs: 300 },
    heartbeatMs: 500,
    log: quiet,
  });
});

afterAll(async () => {
  await daemon?.stop(1000);
  await world?.close();
});

describe('daemon dashboard', () => {
  it("serves /metrics with the scheduler's and the agents' series, and keeps its own endpoint", async () => {
    const dash = daemon.dashboard;
    expect(dash).toBeDefined();
    const port = dash?.port;
    await expect
      .poll(async () => (await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text())).includes('gaxx_agent_build_info{fleet="test",host="h1"'), {
        timeout: 30_000,
      })
      .toBe(true);
    const parsed = parsePrometheusText(await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()));
    expect(parsed.invalid).toBe(0);
    expect(parsed.families.has('gaxx_scheduler_queue_depth')).toBe(true);
    expect(parsed.families.has('gaxx_scheduler_tasks_total')).toBe(true);
    const own = await fetch(`http://${daemon.metricsAddress()}/metrics`);
    expect(own.status).toBe(200);
    expect(await own.text()).toContain('gaxx_scheduler_tasks_total');
  });

  it('answers the page only with the token, and shows the breaker of an agent it dispatched to', async () => {
    const port = daemon.dashboard?.port;
    expect((await fetch(`http://127.0.0.1:${port}/api/state`)).status).toBe(401);
    const run = await runAndWait(
      { runId: newRunId(), tasks: [{ taskId: 'a', fleet: 'test', target: { any: true }, argv: ['true'] }] },
      { settings: world.settings, signer: world.signer, worker: 'never' },
    );
    expect(run.results.get('a')?.outcome).toBe('succeeded');
    const state = async () =>
      (await fetch(`http://127.0.0.1:${port}/api/state?token=${daemon.dashboard?.token}`).then((r) => r.json())) as {
        agents: Array<{ host: string; breaker: string; reachable: boolean }>;
        runs: Array<{ done: number }>;
      };
    await expect.poll(async () => (await state()).agents.map((a) => `${a.host}:${a.breaker}:${a.reachable}`), { timeout: 30_000 }).toEqual(['h1:closed:true']);
    await expect.poll(async () => (await state()).runs[0]?.done, { timeout: 30_000 }).toBe(1);
  });

  it("pins the agent's identity: an agent that is not the fleet host named is refused (IDENTITY_MISMATCH) for Info and metrics, the right name is let in", async () => {
    const creds = loadCertDir(world.pki.clients.monitor.dir);
    const look = async (host: string) => {
      const c = new Collector({
        creds,
        targets: async () => [{ fleet: 'test', host, address: agent.address, metricsAddress: `127.0.0.1:${agent.metricsPort}` }],
        intervalMs: 2000,
      });
      try {
        return (await c.round())[0];
      } finally {
        await c.stop();
      }
    };
    const wrong = await look('h9');
    expect([wrong?.reachable, wrong?.metricsUp, wrong?.errorCode]).toEqual([false, false, 'IDENTITY_MISMATCH']);
    const right = await look('h1');
    expect([right?.reachable, right?.metricsUp, right?.errorCode]).toEqual([true, true, undefined]);
  });

  it('keeps one scrape connection per agent from round to round, and opens new ones (pinned anew) when the target moves', async () => {
    const creds = loadCertDir(world.pki.clients.monitor.dir);
    let target = { fleet: 'test', host: 'h1', address: agent.address, metricsAddress: `127.0.0.1:${agent.metricsPort}` };
    const c = new Collector({ creds, targets: async () => [target], intervalMs: 60_000 });
    try {
      for (let i = 0; i < 4; i++) {
        const [s] = await c.round();
        expect([s?.reachable, s?.metricsUp, s?.error]).toEqual([true, true, undefined]);
      }
      expect(c.scrapeConnections).toBe(1);
      // The host moved (its gRPC address now refuses): Info goes to the new address, not over the old connection.
      target = { ...target, address: '127.0.0.1:1' };
      const [away] = await c.round();
      expect([away?.reachable, away?.metricsUp]).toEqual([false, true]);
      expect(c.scrapeConnections).toBe(2);
      // The same agent under another name: a new connection, checked against the new name.
      target = { ...target, address: agent.address, host: 'h9' };
      const [moved] = await c.round();
      expect([moved?.metricsUp, moved?.errorCode]).toEqual([false, 'IDENTITY_MISMATCH']);
      expect(c.scrapeConnections).toBe(3);
      // Back under its own name: new connections again (the refused ones are gone), and they serve.
      target = { ...target, host: 'h1' };
      const [back] = await c.round();
      expect([back?.reachable, back?.metricsUp, back?.error]).toEqual([true, true, undefined]);
      expect(c.scrapeConnections).toBe(4);
    } finally {
      await c.stop();
    }
  });
});
