/**
 * `npm run bench:connect`: what a new mTLS connection to an agent costs, on the agent and on the
 * caller. A caller without a daemon (`gaxx exec`, `gaxx run` with no scheduler running) opens one
 * to every agent it uses, so this is paid once per agent and command.
 *
 * Two agents on loopback, measured in the same run, rounds alternating: one started as every
 * agent is (agentNodeFlags: its OpenSSL configuration turns TLS 1.3 session tickets off) and one
 * with AGENT_NODE_FLAGS alone (OpenSSL's defaults: two tickets after every handshake). Each round
 * times N fresh connections (connect, one Info call, close) and N Info calls on one open
 * connection, with the CPU of the agent's threads (/proc/PID/task/TID/schedstat) and of this
 * process (the caller) per connection or call. Medians over the rounds.
 *
 *   node dist/bench/agent-connect.js [--connections N] [--rounds R] [--json]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { FleetCa, loadCertDir, type CertBundle } from '../certs/index.js';
import { AGENT_NODE_FLAGS } from '../cli/providers/agent-bundle.js';
import { AgentClient } from '../scheduler/client/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from '../test/helpers/agent.js';
import { issueCertDir } from '../test/helpers/pki.js';
import { benchArgs } from './lib/args.js';

const USAGE = 'usage: node dist/bench/agent-connect.js [--connections N] [--rounds R] [--json]\n';

/** CPU ms of all of `pid`'s threads so far (scheduler statistics: ns, not clock ticks). */
function threadCpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // A thread that ended between the listing and the read.
    }
  }
  return ns / 1e6;
}

const ownCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

interface Sample {
  wallMs: number;
  agentCpuMs: number;
  callerCpuMs: number;
}

/** `n` runs of `op`, per run: wall, the agent's CPU, this process's CPU. */
async function measure(agent: AgentProcess, n: number, op: () => Promise<void>): Promise<Sample> {
  const [a0, c0, t0] = [threadCpuMs(agent.pid), ownCpuMs(), performance.now()];
  for (let i = 0; i < n; i++) await op();
  const [a1, c1, t1] = [threadCpuMs(agent.pid), ownCpuMs(), performance.now()];
  return { wallMs: (t1 - t0) / n, agentCpuMs: (a1 - a0) / n, callerCpuMs: (c1 - c0) / n };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)] as number;
};

interface Variant {
  name: string;
  agent: AgentProcess;
  fresh: Sample[];
  open: Sample[];
}

async function round(v: Variant, operator: CertBundle, n: number): Promise<void> {
  const target = { address: v.agent.address, expect: { fleet: 'bench', host: 'h1' } };
  v.fresh.push(
    await measure(v.agent, n, async () => {
      const c = AgentClient.connect(target, operator);
      try {
        await c.info();
      } finally {
        c.close();
      }
    }),
  );
  const c = AgentClient.connect(target, operator);
  try {
    await c.info();
    v.open.push(await measure(v.agent, n, () => c.info().then(() => undefined)));
  } finally {
    c.close();
  }
}

async function main(): Promise<number> {
  const values = benchArgs(USAGE, { connections: { type: 'string' }, rounds: { type: 'string' }, json: { type: 'boolean' } });
  const n = Number(values.connections ?? 200);
  const rounds = Number(values.rounds ?? 5);
  if (!Number.isInteger(n) || n < 1 || n > 400 || !Number.isInteger(rounds) || rounds < 1 || rounds > 50) {
    // An agent allows an identity 500 calls a second (burst 1,000): a round stays well under that.
    process.stderr.write(`bench:connect: --connections takes 1-400, --rounds 1-50\n${USAGE}`);
    return 2;
  }
  const workDir = mkdtempSync(join(tmpdir(), 'gaxx-bench-connect-'));
  try {
    const { ca } = await FleetCa.init(join(workDir, 'ca'));
    const agentDir = await issueCertDir(ca, join(workDir, 'agent'), {
      identity: { role: 'agent', fleet: 'bench', host: 'h1' },
      hosts: ['127.0.0.1', 'localhost'],
    });
    const operatorDir = await issueCertDir(ca, join(workDir, 'operator'), { identity: { role: 'operator', name: 'bench' } });
    const operator = loadCertDir(operatorDir.dir);
    const start = (name: string, nodeFlags?: readonly string[]) =>
      startAgent({
        certsDir: agentDir.dir,
        dataDir: join(workDir, `data-${name}`),
        metrics: false,
        args: ['--unsafe-no-isolation'],
        ...(nodeFlags ? { nodeFlags: [...nodeFlags] } : {}),
      });
    const variants: Variant[] = [
      { name: 'as shipped (no session tickets)', agent: await start('shipped'), fresh: [], open: [] },
      { name: "OpenSSL's defaults (2 tickets)", agent: await start('defaults', AGENT_NODE_FLAGS), fresh: [], open: [] },
    ];
    // Warm-up: each agent's and this process's code paths, then the timed rounds, taking turns.
    for (const v of variants) await round(v, operator, Math.min(n, 50));
    for (const v of variants) [v.fresh, v.open] = [[], []];
    for (let r = 0; r < rounds; r++) for (const v of variants) await round(v, operator, n);
    const summary = variants.map((v) => ({
      name: v.name,
      fresh: {
        wallMs: median(v.fresh.map((s) => s.wallMs)),
        agentCpuMs: median(v.fresh.map((s) => s.agentCpuMs)),
        callerCpuMs: median(v.fresh.map((s) => s.callerCpuMs)),
      },
      open: {
        wallMs: median(v.open.map((s) => s.wallMs)),
        agentCpuMs: median(v.open.map((s) => s.agentCpuMs)),
        callerCpuMs: median(v.open.map((s) => s.callerCpuMs)),
      },
    }));
    if (values.json) process.stdout.write(`${JSON.stringify({ connections: n, rounds, variants: summary })}\n`);
    else {
      const f = (x: number) => x.toFixed(2).padStart(8);
      const lines = summary.flatMap((s) => [
        `${`${s.name}, new connection + Info`.padEnd(64)}${f(s.fresh.wallMs)}${f(s.fresh.agentCpuMs)}${f(s.fresh.callerCpuMs)}`,
        `${`${s.name}, Info on an open connection`.padEnd(64)}${f(s.open.wallMs)}${f(s.open.agentCpuMs)}${f(s.open.callerCpuMs)}`,
      ]);
      process.stdout.write(
        `agent connection cost, ${n} per round, median of ${rounds} rounds (ms per connection or call)\n` +
          `${'what'.padEnd(64)}${'wall'.padStart(8)}${'agent'.padStart(8)}${'caller'.padStart(8)}\n${lines.join('\n')}\n`,
      );
    }
    return 0;
  } finally {
    await stopAllAgents();
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench:connect: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
