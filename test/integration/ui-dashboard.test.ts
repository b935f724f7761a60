/**
 * The dashboard in a real headless Chromium: three real agents (distinct identities h1-h3 of
 * fleet `test`), a 500-task run through the real queue, the page following it live, a failed
 * task's output tail, a stopped agent turning unreachable, the token refusals, and /metrics
 * parsing as Prometheus text with every agent's series.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCertDir } from '../../certs/index.js';
import { Dashboard, fleetTargets, newRunId, registerFleet, runAndWait, setFleetLimits, type TaskInput } from '../../scheduler/index.js';
import { parsePrometheusText } from '../../scheduler/ui/prom-text.js';
import { startAgent, type AgentProcess } from '../helpers/agent.js';
import { launchBrowser, testOutputDir, type TestBrowser } from '../helpers/browser.js';
import { issueCertDir } from '../helpers/pki.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const shots = testOutputDir('ui');

let world: SchedulerWorld;
let agents: AgentProcess[];
let dash: Dashboard;
let browser: TestBrowser;
let base: string;

function get(
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: dash.port, path, method, headers }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => {
        body += b.toString();
        // An accepted event stream never ends; the status is all we need.
        if (res.headers['content-type'] === 'text/event-stream') req.destroy();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('close', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  world = await startSchedulerWorld({ agents: 0, prefix: 'gxui-' });
  const dirs = await Promise.all(
    ['h1', 'h2', 'h3'].map((host) =>
      issueCertDir(world.pki.ca, join(world.dir, `agent-${host}`), { identity: { role: 'agent', fleet: 'test', host }, hosts: ['127.0.0.1', 'localhost'] }),
    ),
  );
  agents = await Promise.all(dirs.map((d) => startAgent({ certsDir: d.dir })));
  const redis = world.queue.redis;
  await registerFleet(
    redis,
    'test',
    agents.map((a, i) => ({ host: `h${i + 1}`, address: a.address, metrics: `127.0.0.1:${a.metricsPort}` })),
  );
  dash = await Dashboard.start({
    listen: '127.0.0.1:0',
    creds: loadCertDir(world.pki.clients.monitor.dir),
    targets: () => fleetTargets(redis),
    redis,
    depth: () => world.queue.depth(),
    scrapeIntervalMs: 500,
    tickMs: 250,
    log: quiet,
  });
  base = `http://127.0.0.1:${dash.port}`;
  browser = await launchBrowser();
  mkdirSync(shots, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await dash?.stop();
  await world?.close();
});

describe('access', () => {
  it('refuses the page, the event stream and the state without the token (401), and a cancel without the header', async () => {
    for (const path of ['/', '/index.html', '/events', '/api/state', '/?token=wrong', '/events?token=wrong']) {
      expect((await get(path)).status, path).toBe(401);
    }
    expect((await get(`/api/runs/x/cancel?token=${dash.token}`, {}, 'POST')).status).toBe(401);
    // A cookie is no way in: a browser sends 127.0.0.1's cookies to every port of it, any program's.
    for (const path of ['/', '/events', '/api/state']) expect((await get(path, { cookie: `gaxx_ui_token=${dash.token}` })).status, path).toBe(401);
    // The page's static files are the code shipped with gaxx: served without the token.
    expect((await get('/assets/app.js')).status).toBe(200);
    // Then the same with the token; the answer sets no cookie.
    const page = await get(`/?token=${dash.token}`);
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['set-cookie']).toBeUndefined();
    expect((await get(`/events?token=${dash.token}`)).status).toBe(200);
    expect((await get(`/api/state?token=${dash.token}`)).status).toBe(200);
  });

  it('refuses a Host header that is not the loopback address (DNS rebinding), then answers the right one', async () => {
    expect((await get(`/?token=${dash.token}`, { host: `attacker.example:${dash.port}` })).status).toBe(421);
    expect((await get(`/?token=${dash.token}`, { host: `localhost:${dash.port}` })).status).toBe(200);
  });
});

describe('/metrics', () => {
  it('parses as Prometheus text and holds series from every agent, labelled with fleet and host', async () => {
    // As Prometheus would: each scrape keeps the collection going (and the first after a pause waits for a round).
    await expect.poll(async () => upValues((await get('/metrics')).body), { timeout: 30_000 }).toEqual([1, 1, 1]);
    const res = await get('/metrics');
    expect(res.status).toBe(200);
    const parsed = parsePrometheusText(res.body);
    expect(parsed.invalid).toBe(0);
    const build = parsed.families.get('gaxx_agent_build_info')?.samples ?? [];
    const label = (s: { labels: Array<[string, string]> }, k: string) => s.labels.find(([n]) => n === k)?.[1];
    expect(build.map((s) => `${label(s, 'fleet')}/${label(s, 'host')}`).sort()).toEqual(['test/h1', 'test/h2', 'test/h3']);
    expect(upValues(res.body)).toEqual([1, 1, 1]);
    if (spawnSync('sh', ['-c', 'command -v promtool']).status === 0) {
      const check = spawnSync('promtool', ['check', 'metrics'], { input: res.body, encoding: 'utf8' });
      // promtool also lints names; only a parse error fails it here.
      expect(check.stderr + check.stdout).not.toMatch(/error while linting|parse error|text format parsing error/i);
    }
  });
});

function upValues(text: string): Array<number | undefined> {
  const up = parsePrometheusText(text).families.get('up')?.samples ?? [];
  return ['h1', 'h2', 'h3'].map((h) => up.find((s) => s.labels.some(([k, v]) => k === 'host' && v === h))?.value);
}

async function waitForText(page: Page, selector: string, text: string | RegExp): Promise<void> {
  await page.locator(selector, { hasText: text }).first().waitFor({ timeout: 45_000 });
}

describe('dashboard', () => {
  it("shows the agents, follows a 500-task run to 500/500 without a reload, a failure's output tail, and a stopped agent as unreachable", async () => {
    const { page, errors } = await browser.page();
    await page.goto(`${base}/?token=${dash.token}#agents`);
    for (const h of ['h1', 'h2', 'h3']) await waitForText(page, `#agents-table tr[data-host="${h}"] td`, 'reachable');
    expect(await page.locator('#agents-table tbody tr').count()).toBe(3);
    await page.locator('#load-chart canvas').first().waitFor();
    await page.screenshot({ path: join(shots, 'agents.png'), fullPage: true });
    await page.evaluate(() => ((globalThis as unknown as { loadedOnce: number }).loadedOnce = 1));

    await page.click('#tab-runs');
    const tasks: TaskInput[] = Array.from({ length: 500 }, (_, i) => ({
      taskId: `t${i}`,
      fleet: 'test',
      target: { any: true },
      argv: i === 123 ? ['sh', '-c', 'echo first-line; echo the-failing-tail >&2; exit 3'] : ['true'],
    }));
    const runId = newRunId();
    const run = runAndWait({ runId, tasks }, { settings: world.settings, signer: world.signer, connect: world.connect(), worker: 'always', concurrency: 48 });
    await waitForText(page, `.run[data-run="${runId}"] .progress`, '500/500');
    const outcome = await run;
    expect(outcome.results.size).toBe(500);
    await waitForText(page, '.failure[data-task="t123"] pre', 'the-failing-tail');
    await page.locator('#run-chart canvas').first().waitFor();
    expect(await page.evaluate(() => (globalThis as unknown as { loadedOnce?: number }).loadedOnce)).toBe(1);
    expect(await page.locator('#hosts-table tbody tr').count()).toBeGreaterThanOrEqual(1);
    await page.screenshot({ path: join(shots, 'runs.png'), fullPage: true });

    await page.click('#tab-agents');
    await agents[2]?.stop();
    await waitForText(page, '#agents-table tr[data-host="h3"] td', 'unreachable');
    await waitForText(page, '#agents-table tr[data-host="h1"] td', 'reachable');
    // A failed scrape is a series too.
    await expect.poll(async () => upValues((await get('/metrics')).body), { timeout: 30_000 }).toEqual([1, 1, 0]);
    await page.screenshot({ path: join(shots, 'agent-down.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('asks before cancelling a run, then cancels it', async () => {
    const { page, errors } = await browser.page();
    await page.goto(`${base}/?token=${dash.token}#runs`);
    const tasks: TaskInput[] = Array.from({ length: 40 }, (_, i) => ({ taskId: `s${i}`, fleet: 'test', target: { any: true }, argv: ['sleep', '30'] }));
    const runId = newRunId();
    const ac = new AbortController();
    const run = runAndWait(
      { runId, tasks },
      { settings: world.settings, signer: world.signer, connect: world.connect(), worker: 'always', concurrency: 4, cancel: ac.signal, cancelGraceMs: 20_000 },
    );
    const card = `.run[data-run="${runId}"]`;
    await waitForText(page, `${card} .state`, 'running');
    await page.click(`${card} button.cancel`);
    await page.locator('#confirm[open]').waitFor();
    await page.screenshot({ path: join(shots, 'cancel-confirm.png') });
    // Keep running first: nothing happens.
    await page.click('#confirm-no');
    await page.click(`${card} button.cancel`);
    await page.click('#confirm-yes');
    await waitForText(page, `${card} .state`, /cancelling|cancelled/);
    const outcome = await Promise.race([run, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('run did not end after the cancel')), 50_000))]);
    expect([...outcome.results.values()].some((r) => r.outcome === 'cancelled')).toBe(true);
    // Every task has its result: the run stays cancelled, as `gaxx runs` says (it read done).
    await waitForText(page, `${card} .state`, 'cancelled');
    ac.abort();
    expect(errors).toEqual([]);
    await page.close();
  });

  it("shows a fleet's cost so far against its budget and TTL, and ?fleet= shows only that fleet", async () => {
    // Spawned two hours ago at 0.50/h with a budget of 4.00 (a quarter spent), an hour of TTL left.
    await setFleetLimits(world.queue.redis, 'test', { since: Date.now() - 2 * 3_600_000, pricePerHour: 0.5, budget: 4, expiresAt: Date.now() + 3_600_000 });
    const { page, errors } = await browser.page();
    await page.goto(`${base}/?token=${dash.token}&fleet=test#agents`);
    const row = '#fleets-table tr[data-fleet="test"] td';
    await waitForText(page, row, '25%');
    await waitForText(page, row, '4.00 USD');
    await waitForText(page, row, /^1\.\d{4} USD$/);
    await waitForText(page, row, /min|h/);
    await waitForText(page, '#watching', 'fleet: test');
    expect(await page.locator('#agents-table tbody tr').count()).toBeGreaterThanOrEqual(2);
    await page.screenshot({ path: join(shots, 'fleet-budget.png'), fullPage: true });
    // Another fleet's page: none of this fleet's agents, runs or limits.
    await page.goto(`${base}/?token=${dash.token}&fleet=elsewhere#agents`);
    await waitForText(page, '#watching', 'fleet: elsewhere');
    await waitForText(page, '#conn', 'live');
    expect(await page.locator('#agents-table tbody tr').count()).toBe(0);
    expect(await page.locator('#fleets-box').isHidden()).toBe(true);
    const state = JSON.parse((await get(`/api/state?token=${dash.token}&fleet=elsewhere`)).body) as { agents: unknown[]; runs: unknown[]; fleets: unknown[] };
    expect([state.agents, state.runs, state.fleets]).toEqual([[], [], []]);
    const full = JSON.parse((await get(`/api/state?token=${dash.token}&fleet=test`)).body) as { runs: unknown[]; fleets: Array<{ budgetUsed: number }> };
    expect(full.runs.length).toBeGreaterThan(0);
    expect(full.fleets[0]?.budgetUsed).toBeGreaterThanOrEqual(0.25);
    expect(errors).toEqual([]);
    await page.close();
  });
});
