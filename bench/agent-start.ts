/**
 * `npm run bench:agent-start`: how long an agent takes from process start to answering Health
 * over mTLS, and how much CPU it spends on the way, beside `node -e 0` measured in the same run
 * (the runs take turns, so a change in the machine's load touches all of them alike). The agent
 * runs as bootstrap and the local provider run it: the installed bundle, as nobody when we are
 * root, with metrics on; the tsc build (dist/agent/main.js) is timed beside it.
 *
 *   node dist/bench/agent-start.js [--runs N] [--entry PATH ...] [--bare-entry PATH ...] [--env K=V ...] [--json]
 *
 * --entry picks the agent entries to time (default: the installed bundle and the tsc build);
 * --bare-entry adds entries started without the agents' Node flags (say, a build from before them);
 * --env adds to the environment of every agent (e.g. --env MALLOC_ARENA_MAX=2).
 * CPU is the agent's user + system time (all threads, and its reaped children such as the
 * start-up probes) read from /proc when it first answered Health: 10 ms ticks, so it is a mean.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FleetCa, loadCertDir, type CertBundle } from '../certs/index.js';
import { AgentClient } from '../scheduler/client/index.js';
import { agentMain, repoRoot, startAgent } from '../test/helpers/agent.js';
import { issueCertDir } from '../test/helpers/pki.js';
import { median, runMeasured } from './lib/timing.js';
import { refuseCrowdedAgentUser } from './lib/agent-room.js';
import { benchArgs } from './lib/args.js';
import { cleanUpOnSignal, stopStarted } from './lib/on-signal.js';

const USAGE = 'usage: node dist/bench/agent-start.js [--runs N] [--entry PATH ...] [--bare-entry PATH ...] [--env K=V ...] [--json]\n';

/** One start: wall time to the "agent listening" line and to the first Health answer, and CPU by then. */
interface Sample {
  listeningMs: number;
  healthyMs: number;
  cpuMs: number;
}

/** User + system CPU of `pid` (all threads) and of its reaped children, in ms (/proc, 100 Hz ticks). */
function processCpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8')
    .replace(/^.*\) /, '')
    .split(' ');
  // After "(comm) ", utime, stime, cutime, cstime are indexes 11-14.
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
}

/** An agent entry to time, and whether it starts without the agents' Node flags. */
interface Entry {
  name: string;
  path: string;
  bare?: boolean;
}

async function startOnce(e: Entry, certsDir: string, operator: CertBundle, env: Record<string, string>, dataDir: string): Promise<Sample> {
  const t0 = performance.now();
  const agent = await startAgent({ certsDir, dataDir, entry: e.path, env, ...(e.bare ? { nodeFlags: [] } : {}) });
  const listeningMs = performance.now() - t0;
  const client = AgentClient.connect({ address: agent.address, expect: { fleet: 'bench', host: 'h1' } }, operator);
  try {
    const status = await client.health();
    const healthyMs = performance.now() - t0;
    const cpuMs = processCpuMs(agent.pid);
    if (status !== 'SERVING') throw new Error(`agent answered Health with ${status}`);
    return { listeningMs, healthyMs, cpuMs };
  } finally {
    client.close();
    await agent.stop();
  }
}

interface Row {
  name: string;
  listeningMs: number;
  healthyMs: number;
  cpuMs: number;
}

function table(rows: Row[], base: { wallMs: number; cpuMs: number }): string {
  const out = [['what', 'listening ms', 'healthy ms', 'x node -e 0', 'cpu ms', 'cpu x node -e 0']];
  out.push(['node -e 0', '', base.wallMs.toFixed(1), '1.00x', base.cpuMs.toFixed(1), '1.00x']);
  for (const r of rows) {
    out.push([
      r.name,
      r.listeningMs.toFixed(1),
      r.healthyMs.toFixed(1),
      `${(r.healthyMs / base.wallMs).toFixed(2)}x`,
      r.cpuMs.toFixed(1),
      `${(r.cpuMs / base.cpuMs).toFixed(2)}x`,
    ]);
  }
  const w = out[0]?.map((_, i) => Math.max(...out.map((r) => (r[i] ?? '').length))) ?? [];
  return out.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[0] ?? 0) : c.padStart(w[i] ?? 0))).join('  ')).join('\n');
}

async function main(): Promise<number> {
  const values = benchArgs(USAGE, {
    runs: { type: 'string' },
    entry: { type: 'string', multiple: true },
    'bare-entry': { type: 'string', multiple: true },
    env: { type: 'string', multiple: true },
    json: { type: 'boolean' },
  });
  await refuseCrowdedAgentUser();
  const runs = Number(values.runs ?? 10);
  const env = Object.fromEntries((values.env ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const bare = (values['bare-entry'] ?? []).map((e): Entry => ({ name: `${e} (no agent flags)`, path: resolve(e), bare: true }));
  const entries: Entry[] = [
    ...bare,
    ...(values.entry?.map((e) => ({ name: e, path: resolve(e) })) ?? [
      { name: 'agent bundle (installed)', path: agentMain() },
      { name: 'agent tsc build', path: join(repoRoot(), 'dist', 'agent', 'main.js') },
    ]),
  ];
  const dir = mkdtempSync(join(tmpdir(), 'gaxx-bench-agent-start-'));
  // Stopped by a signal (Ctrl-C, `timeout`): nothing it started is left running.
  cleanUpOnSignal(() => stopStarted(dir));
  const load = loadavg()[0] ?? NaN;
  try {
    const { ca } = await FleetCa.init(join(dir, 'ca'));
    const agentDir = await issueCertDir(ca, join(dir, 'agent'), { identity: { role: 'agent', fleet: 'bench', host: 'h1' }, hosts: ['127.0.0.1', 'localhost'] });
    const opDir = await issueCertDir(ca, join(dir, 'operator'), { identity: { role: 'operator', name: 'bench' } });
    const operator = loadCertDir(opDir.dir);
    // With the agents' bare environment: this one's may make Node read CA files at start
    // (NODE_EXTRA_CA_CERTS), which agents never do.
    const node = { name: 'node -e 0', argv: [process.execPath, '-e', '0'], env: { PATH: process.env.PATH } };
    const base: Array<{ wallMs: number; cpuMs: number }> = [];
    const samples = entries.map(() => [] as Sample[]);
    // One warm-up of each (page cache, the installed copy), then the runs take turns.
    runMeasured(node);
    for (const [j, e] of entries.entries()) await startOnce(e, agentDir.dir, operator, env, join(dir, `data-w${j}`));
    for (let i = 0; i < runs; i++) {
      base.push(runMeasured(node));
      for (const [j, e] of entries.entries()) samples[j]?.push(await startOnce(e, agentDir.dir, operator, env, join(dir, `data-${i}-${j}`)));
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const baseline = { wallMs: median(base.map((b) => b.wallMs)), cpuMs: mean(base.map((b) => b.cpuMs)) };
    const rows: Row[] = entries.map((e, j) => {
      const s = samples[j] ?? [];
      return {
        name: e.name,
        listeningMs: median(s.map((x) => x.listeningMs)),
        healthyMs: median(s.map((x) => x.healthyMs)),
        cpuMs: mean(s.map((x) => x.cpuMs)),
      };
    });
    if (values.json) process.stdout.write(`${JSON.stringify({ runs, env, load1: load, baseline, rows })}\n`);
    else {
      const envText = Object.keys(env).length ? ` env ${JSON.stringify(env)}` : '';
      process.stdout.write(
        `agent start to Health over mTLS, median wall / mean CPU of ${runs} runs (load ${load.toFixed(2)})${envText}\n${table(rows, baseline)}\n`,
      );
    }
    return 0;
  } finally {
    await stopStarted(dir);
  }
}

main().then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
