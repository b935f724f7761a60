// The built CLI's `gaxx ui`: serves the dashboard for an --agent list, prints its URL with the
// token, refuses bad flags and a non-loopback address, and stops on Ctrl-C. With Redis: --fleet
// filters the page's data whether this process or the scheduler daemon serves it, a fleet's cost
// so far is shown against its budget, and on its own it shows the daemons' breaker states.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { runGaxx, spawnGaxx, stopAllGaxx, type CliRun } from '../helpers/cli.js';
import { homeAgentCerts, initHome } from '../helpers/cli-world.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { createRedis, HEARTBEAT_KEY, readDashboardUrl, redisSettingsFromUrl, registerFleet, setFleetLimits, waitReady } from '../../scheduler/index.js';

// The installed bin (the bundle, helpers/cli.ts): the page's assets are read from beside it.
let home: string;
let agent: AgentProcess;

const gaxx = (args: string[], env: Record<string, string> = {}): Promise<CliRun> => runGaxx(args, { home, env });

beforeAll(async () => {
  home = await initHome('gxui-e2e-');
  const certs = await homeAgentCerts(home);
  agent = await startAgent({ certsDir: certs });
});

afterAll(async () => {
  await stopAllGaxx();
  await stopAllAgents();
  rmSync(home, { recursive: true, force: true });
});

describe('gaxx ui', () => {
  it('refuses --fleet with --agent (USAGE) and a non-loopback address (CONFIG_INVALID)', async () => {
    expect((await gaxx(['ui', '--fleet', 'a', '--agent', agent.address])).code).toBe(exitCodeFor('USAGE'));
    expect((await gaxx(['ui', '--agent', agent.address, '--listen', '0.0.0.0:0'])).code).toBe(exitCodeFor('CONFIG_INVALID'));
    expect((await gaxx(['ui', '--agent', agent.address, '--interval', '5'])).code).toBe(exitCodeFor('USAGE'));
  });

  it('a --listen address something already listens on is FAILED_PRECONDITION (exit 6) saying how to pick another', async () => {
    const taken = createServer(() => undefined);
    await new Promise<void>((done) => taken.listen(0, '127.0.0.1', done));
    try {
      const listen = `127.0.0.1:${(taken.address() as AddressInfo).port}`;
      const r = await gaxx(['ui', '--agent', agent.address, '--listen', listen, '--json']);
      expect(r.code, r.stderr).toBe(exitCodeFor('FAILED_PRECONDITION'));
      expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'FAILED_PRECONDITION', exitCode: exitCodeFor('FAILED_PRECONDITION') } });
      expect(r.stderr).toContain(`cannot listen on ${listen}: something already listens there (EADDRINUSE)`);
      expect(r.stderr).toContain('--listen 127.0.0.1:0');
    } finally {
      taken.close();
    }
  });

  it('serves an --agent list, prints the URL with its token, collects the agent, and stops on Ctrl-C', async () => {
    const ui = spawnGaxx(['ui', '--agent', `${agent.address}/${agent.metricsPort}`, '--listen', '127.0.0.1:0', '--interval', '300ms', '--json'], { home });
    const line = await ui.line('stdout', () => true);
    const { url, served } = JSON.parse(line) as { url: string; served: string };
    expect(served).toBe('here');
    const u = new URL(url);
    expect(u.hostname).toBe('127.0.0.1');
    expect(u.searchParams.get('token')?.length).toBeGreaterThanOrEqual(40);
    expect((await fetch(`${u.origin}/`)).status).toBe(401);
    expect((await fetch(url)).status).toBe(200);
    expect((await fetch(`${u.origin}/assets/uPlot.iife.min.js?token=${u.searchParams.get('token')}`)).status).toBe(200);
    // The monitor certificate was issued into the state dir, its key private.
    expect(statSync(join(home, 'state', 'monitor', 'certs', 'key.pem')).mode & 0o077).toBe(0);
    const metricsHasAgent = async () => /^up\{[^}]*host="127\.0\.0\.1:\d+"[^}]*\} 1$/m.test(await (await fetch(`${u.origin}/metrics`)).text());
    await expect.poll(metricsHasAgent, { timeout: 30_000 }).toBe(true);
    ui.kill('SIGINT');
    expect((await ui.done).code).toBe(0);
    // Ctrl-C stops the dashboard, in its own words (not run's "cancelling").
    expect(ui.stderr()).toContain('gaxx: stopping the dashboard (press Ctrl-C again to quit)');
  });
});

interface State {
  agents: Array<{ fleet: string; host: string; breaker: string }>;
  fleets: Array<{ fleet: string; costSoFar: number; budget?: number; budgetUsed?: number; currency: string }>;
  watching?: string[];
}

/** `/api/state` of a dashboard URL (its token and ?fleet= kept). */
async function stateOf(url: string): Promise<State> {
  const u = new URL(url);
  u.pathname = '/api/state';
  const res = await fetch(u);
  expect(res.status).toBe(200);
  return (await res.json()) as State;
}

/** Starts `gaxx ARGS` and resolves with its first stdout line; `stop` ends it with Ctrl-C. */
async function firstLine(args: string[], env: Record<string, string>): Promise<{ line: string; stop: () => Promise<number | null> }> {
  const p = spawnGaxx(args, { home, env });
  const line = await p.line('stdout', () => true);
  return { line, stop: () => (p.kill('SIGINT'), p.done.then((r) => r.code)) };
}

describe('gaxx ui with fleets in Redis', () => {
  let redis: TestRedis;
  let conn: ReturnType<typeof createRedis>;
  beforeAll(async () => {
    redis = await startRedis();
    conn = createRedis(redisSettingsFromUrl(redis.url), 'producer');
    await waitReady(conn);
    await registerFleet(conn, 'adhoc', [{ host: 'h1', address: agent.address, metrics: `127.0.0.1:${agent.metricsPort}` }]);
    await registerFleet(conn, 'other', [{ host: 'x1', address: '127.0.0.1:1' }]);
    // Spawned an hour ago at 1.00/h with a budget of 4.00: a quarter of it spent.
    await setFleetLimits(conn, 'adhoc', { since: Date.now() - 3_600_000, pricePerHour: 1, budget: 4, expiresAt: Date.now() + 3_600_000 });
  });
  afterAll(async () => {
    conn?.disconnect();
    await redis?.destroy();
  });

  it('on its own: refuses a fleet that is not registered (NOT_FOUND), among known ones too', async () => {
    const r = await gaxx(['ui', '--fleet', 'adhoc,nope', '--listen', '127.0.0.1:0', '--json'], { GAXX_REDIS_URL: redis.url });
    expect(r.code, r.stderr).toBe(exitCodeFor('NOT_FOUND'));
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it("on its own: --fleet filters agents and limits, cost is shown against the budget, and the daemons' breaker states show", async () => {
    // A live daemon's published breaker view (as its heartbeat writes it): per address and
    // identity; the open breaker of another agent that held the address before is not this one's.
    await conn.zadd(HEARTBEAT_KEY, Date.now() + 120_000, 'd-test');
    await conn.hset('{gaxx}:breakers:d-test', `adhoc/h1@${agent.address}`, 'half-open', `gone/h1@${agent.address}`, 'open');
    const ui = await firstLine(['ui', '--fleet', 'adhoc', '--listen', '127.0.0.1:0', '--interval', '300ms', '--json'], { GAXX_REDIS_URL: redis.url });
    try {
      const { url, served } = JSON.parse(ui.line) as { url: string; served: string };
      expect(served).toBe('here');
      expect(new URL(url).searchParams.get('fleet')).toBe('adhoc');
      await expect
        .poll(async () => (await stateOf(url)).agents.map((a) => `${a.fleet}/${a.host}:${a.breaker}`), { timeout: 30_000 })
        .toEqual(['adhoc/h1:half-open']);
      const s = await stateOf(url);
      expect(s.watching).toEqual(['adhoc']);
      expect(s.fleets).toHaveLength(1);
      expect(s.fleets[0]).toMatchObject({ fleet: 'adhoc', budget: 4, currency: 'USD' });
      expect(s.fleets[0]?.costSoFar).toBeGreaterThanOrEqual(1);
      expect(s.fleets[0]?.budgetUsed).toBeGreaterThanOrEqual(0.25);
      // This process collects only the fleets it was asked for; the page's filter narrows further.
      const all = new URL(url);
      all.searchParams.delete('fleet');
      expect((await stateOf(all.toString())).agents.map((a) => a.fleet)).toEqual(['adhoc']);
      all.searchParams.set('fleet', 'other');
      const other = await stateOf(all.toString());
      expect(other.agents).toEqual([]);
      expect(other.fleets).toEqual([]);
    } finally {
      expect(await ui.stop()).toBe(0);
      await conn.del('{gaxx}:breakers:d-test');
      await conn.zrem(HEARTBEAT_KEY, 'd-test');
    }
  });

  it('a recorded dashboard URL whose process is gone (or was a later one with its pid) is neither asked nor printed: what listens on its port now gets no token', async () => {
    // Something else took the port a killed daemon's dashboard left, and answers as it did.
    const asked: string[] = [];
    const squatter = createHttpServer((req, res) => {
      asked.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((done) => squatter.listen(0, '127.0.0.1', done));
    const gone = spawn('true');
    await new Promise((done) => gone.once('exit', done));
    const file = join(home, 'state', 'ui', 'dashboard.json');
    mkdirSync(dirname(file), { recursive: true });
    const url = `http://127.0.0.1:${(squatter.address() as AddressInfo).port}/?token=of-a-dead-daemon`;
    try {
      for (const writer of [{ pid: gone.pid }, { pid: process.pid, start: '1' }]) {
        writeFileSync(file, JSON.stringify({ url, ...writer }), { mode: 0o600 });
        const ui = await firstLine(['ui', '--listen', '127.0.0.1:0', '--json'], { GAXX_REDIS_URL: redis.url });
        const printed = JSON.parse(ui.line) as { url: string; served: string };
        expect(await ui.stop()).toBe(0);
        expect(printed.served, JSON.stringify(writer)).toBe('here');
        expect(printed.url).not.toContain('of-a-dead-daemon');
      }
      expect(asked).toEqual([]);
    } finally {
      rmSync(file, { force: true });
      squatter.close();
    }
  });

  it('a daemon whose dashboard address was taken records why: gaxx ui says so and serves the dashboard itself on a free port', async () => {
    const extra = { GAXX_REDIS_URL: redis.url };
    const taken = createServer(() => undefined);
    await new Promise<void>((done) => taken.listen(0, '127.0.0.1', done));
    const port = (taken.address() as AddressInfo).port;
    const daemon = spawnGaxx(['scheduler', '--metrics-listen', '127.0.0.1:0', '--ui-listen', `127.0.0.1:${port}`, '--reap-interval', '0'], {
      home,
      env: extra,
    });
    try {
      await expect.poll(() => readDashboardUrl(join(home, 'state'))?.error, { timeout: 30_000, interval: 200 }).toContain('EADDRINUSE');
      const ui = spawnGaxx(['ui', '--json'], { home, env: extra });
      const printed = JSON.parse(await ui.line('stdout', () => true)) as { url: string; served: string };
      ui.kill('SIGINT');
      expect((await ui.done).code).toBe(0);
      expect(printed.served).toBe('here');
      expect(Number(new URL(printed.url).port)).not.toBe(port);
      expect(ui.stderr()).toMatch(
        new RegExp(
          `the scheduler daemon \\(pid \\d+\\) serves no dashboard: cannot listen on 127\\.0\\.0\\.1:${port}: something already listens there \\(EADDRINUSE\\)`,
        ),
      );
    } finally {
      daemon.kill('SIGTERM');
      await daemon.done;
      taken.close();
    }
    // The daemon removed its record when it stopped.
    expect(readDashboardUrl(join(home, 'state'))).toBeUndefined();
  });

  it("when the scheduler daemon serves the dashboard: gaxx ui --fleet prints the daemon's URL filtered to that fleet", async () => {
    const extra = { GAXX_REDIS_URL: redis.url };
    const daemon = spawnGaxx(['scheduler', '--metrics-listen', '127.0.0.1:0', '--ui-listen', '127.0.0.1:0', '--reap-interval', '0'], { home, env: extra });
    const log = (): string => daemon.stderr();
    try {
      // The daemon leaves its URL in the state dir once its dashboard listens.
      await expect.poll(() => readDashboardUrl(join(home, 'state'))?.url, { timeout: 60_000, interval: 200 }).toBeDefined();
      // A fleet neither the state nor the registry knows is NOT_FOUND, daemon or not.
      const unknown = await gaxx(['ui', '--fleet', 'nope', '--json'], extra);
      expect(unknown.code, unknown.stderr).toBe(exitCodeFor('NOT_FOUND'));
      expect(JSON.parse(unknown.stdout)).toMatchObject({ error: { code: 'NOT_FOUND' } });
      const r = await gaxx(['ui', '--fleet', 'other', '--json'], extra);
      expect(r.code, r.stderr).toBe(0);
      const printed = JSON.parse(r.stdout.split('\n')[0] as string) as { url: string; served: string };
      expect(printed.served, log()).toBe('daemon');
      const url = printed.url;
      expect(new URL(url).searchParams.get('fleet')).toBe('other');
      await expect.poll(async () => (await stateOf(url)).agents.map((a) => `${a.fleet}/${a.host}`), { timeout: 30_000 }).toEqual(['other/x1']);
      expect((await stateOf(url)).fleets).toEqual([]);
    } finally {
      daemon.kill('SIGTERM');
      await daemon.done;
    }
    expect(log()).not.toMatch(/"level":(50|60)/);
  });
});
