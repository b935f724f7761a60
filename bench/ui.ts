/**
 * The dashboard under load, measured in a real headless Chromium (Performance API):
 *  - large: 500 simulated agents (metrics over mTLS, Info over gRPC mTLS) and a 100,000-task run
 *    whose results are written to Redis as it goes
 *  - baseline, same run: 5 simulated agents and a 20,000-task run
 * For each: time to first paint, time until every agent is on the page, the page's own time per
 * update batch (its `gaxx:update` measures), long tasks, and frames over 100 ms while updates
 * stream. Prints the figures and the large/baseline ratios. `npm run bench:ui` (builds first).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetCa, loadCertDir, writeCertDir } from '../certs/index.js';
import { createRedis, Dashboard, newRunId, redisSettingsFromUrl, waitReady } from '../scheduler/index.js';
import { launchBrowser, type TestBrowser } from '../test/helpers/browser.js';
import { startRedis } from '../test/helpers/redis.js';
import { serveInfo, serveMetrics, simTargets, writeRun, type Pem } from './lib/ui-sim.js';
import { benchArgs } from './lib/args.js';

const AGENTS = Number(process.env.BENCH_UI_AGENTS ?? 500);
const TASKS = Number(process.env.BENCH_UI_TASKS ?? 100_000);
const RATE = Number(process.env.BENCH_UI_RATE ?? 2500);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

interface Figures {
  firstPaintMs: number;
  allAgentsMs: number;
  batches: number;
  batchMedianMs: number;
  batchP95Ms: number;
  batchMaxMs: number;
  longTasks: number;
  frames: number;
  framesOver100: number;
  runSeconds: number;
}

/** What the page-side functions use of the browser's globals. */
interface PageGlobals {
  document: { querySelectorAll(s: string): { length: number } };
  performance: {
    getEntriesByType(t: string): Array<{ name: string; startTime: number }>;
    getEntriesByName(n: string): Array<{ duration: number }>;
    clearMeasures(n: string): void;
  };
  __bench: { on: boolean; longTasks: number; frames: number; over100: number };
}

// Runs in the page before its own scripts: long tasks and frame gaps, from the start.
const PROBE = `
window.__bench = { longTasks: 0, frames: 0, over100: 0, on: false };
new PerformanceObserver((l) => { window.__bench.longTasks += l.getEntries().length; }).observe({ type: 'longtask', buffered: true });
(function () {
  let last = 0;
  function f(t) { if (window.__bench.on && last) { window.__bench.frames++; if (t - last > 100) window.__bench.over100++; } last = t; requestAnimationFrame(f); }
  requestAnimationFrame(f);
})();
`;

const pct = (xs: number[], p: number): number =>
  xs.length ? ([...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] as number) : 0;

async function pki(dir: string): Promise<{ agentPem: Pem; monitorDir: string }> {
  const { ca } = await FleetCa.init(join(dir, 'ca'));
  const [a, m] = await Promise.all([
    ca.issue({ identity: { role: 'agent', fleet: 'bench', host: 'sim' }, hosts: ['127.0.0.1'] }),
    ca.issue({ identity: { role: 'monitor', name: 'bench' } }),
  ]);
  writeCertDir(join(dir, 'monitor'), { certPem: m.certPem, keyPem: m.keyPem, caPem: ca.certPem });
  return { agentPem: { certPem: a.certPem, keyPem: a.keyPem, caPem: ca.certPem }, monitorDir: join(dir, 'monitor') };
}

async function measure(browser: TestBrowser, redisUrl: string, dir: string, agents: number, tasks: number): Promise<Figures> {
  const { agentPem, monitorDir } = await pki(join(dir, `pki-${agents}`));
  const metrics = await serveMetrics(agents, agentPem);
  const info = await serveInfo(agentPem);
  const targets = simTargets(info.address, metrics.ports);
  const redis = createRedis(redisSettingsFromUrl(redisUrl), 'worker');
  redis.on('error', () => undefined);
  await waitReady(redis, 30_000);
  const dash = await Dashboard.start({
    listen: '127.0.0.1:0',
    creds: loadCertDir(monitorDir),
    targets: async () => targets,
    redis,
    scrapeIntervalMs: 2000,
    tickMs: 1000,
    log: quiet,
  });
  const { page } = await browser.page();
  try {
    await page.addInitScript(PROBE);
    const t0 = Date.now();
    await page.goto(`http://127.0.0.1:${dash.port}/?token=${dash.token}#agents`);
    // Page-side functions (a string would be eval'd in the page, which its CSP forbids); this
    // file is compiled without the DOM's types, hence the casts.
    await page.waitForFunction((n) => (globalThis as unknown as PageGlobals).document.querySelectorAll('#agents-table tbody tr').length >= n, agents, {
      timeout: 300_000,
    });
    const allAgentsMs = Date.now() - t0;
    const firstPaintMs = await page.evaluate(
      () => (globalThis as unknown as PageGlobals).performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint')?.startTime ?? -1,
    );
    await page.evaluate(() => {
      const g = globalThis as unknown as PageGlobals;
      g.performance.clearMeasures('gaxx:update');
      g.__bench.on = true;
    });
    await page.click('#tab-runs');
    const runId = newRunId();
    const r0 = Date.now();
    // A failed write ends the wait at once (and is reported), instead of a timeout later.
    const writing = writeRun(
      redis,
      runId,
      tasks,
      targets.map((t) => t.host),
      RATE,
    );
    await Promise.all([writing, page.locator(`.run[data-run="${runId}"] .progress`, { hasText: `${tasks}/${tasks}` }).waitFor({ timeout: 600_000 })]);
    const runSeconds = (Date.now() - r0) / 1000;
    const got = await page.evaluate(() => {
      const g = globalThis as unknown as PageGlobals;
      return { batches: g.performance.getEntriesByName('gaxx:update').map((e) => e.duration), b: g.__bench };
    });
    return {
      firstPaintMs,
      allAgentsMs,
      batches: got.batches.length,
      batchMedianMs: pct(got.batches, 0.5),
      batchP95Ms: pct(got.batches, 0.95),
      batchMaxMs: Math.max(0, ...got.batches),
      longTasks: got.b.longTasks,
      frames: got.b.frames,
      framesOver100: got.b.over100,
      runSeconds,
    };
  } finally {
    await page.close();
    await dash.stop();
    redis.disconnect();
    await info.close();
    await metrics.close();
  }
}

function print(label: string, f: Figures): void {
  console.log(
    `${label.padEnd(28)} first paint ${f.firstPaintMs.toFixed(0)} ms | all agents shown ${f.allAgentsMs} ms | update batches ${f.batches}: median ${f.batchMedianMs.toFixed(1)} ms, p95 ${f.batchP95Ms.toFixed(1)} ms, max ${f.batchMaxMs.toFixed(1)} ms | long tasks ${f.longTasks} | frames ${f.frames}, over 100 ms ${f.framesOver100} | run shown done after ${f.runSeconds.toFixed(1)} s`,
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gx-bench-ui-'));
  const redis = await startRedis({ tcp: true });
  const browser = await launchBrowser();
  try {
    const base = await measure(browser, redis.url, dir, 5, 20_000);
    print('baseline (5 agents, 20k)', base);
    const large = await measure(browser, redis.url, dir, AGENTS, TASKS);
    print(`large (${AGENTS} agents, ${TASKS / 1000}k)`, large);
    const r = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : 'n/a');
    console.log(
      `ratios large/baseline: first paint ${r(large.firstPaintMs, base.firstPaintMs)}, all agents shown ${r(large.allAgentsMs, base.allAgentsMs)}, batch median ${r(large.batchMedianMs, base.batchMedianMs)}, batch p95 ${r(large.batchP95Ms, base.batchP95Ms)}`,
    );
    console.log(`responsive while streaming: ${large.framesOver100 === 0 ? 'yes' : 'no'} (${large.framesOver100} of ${large.frames} frames over 100 ms)`);
  } finally {
    await browser.close();
    await redis.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

benchArgs(
  'usage: node dist/bench/ui.js\n  environment: BENCH_UI_AGENTS (default 500), BENCH_UI_TASKS (default 100000), BENCH_UI_RATE (results/s, default 2500)',
  {},
);
await main();
