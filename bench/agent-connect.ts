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
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { FleetCa, loadCertDir, type CertBundle } from '../certs/index.js';
import { AGENT_NODE_FLAGS } from '../cli/providers/agent-bundle.js';
import { AgentClient } from '../scheduler/client/index.js';
import { startAgent, type AgentProcess } from '../test/helpers/agent.js';
import { issueCertDir } from '../test/helpers/pki.js';
import { refuseCrowdedAgentUser } from './lib/agent-room.js';
import { benchArgs } from './lib/args.js';
import { cleanUpOnSignal, stopStarted } from './lib/on-signal.js';
import { processCpuMs } from './lib/process-cpu.js';
import { formatTable, median } from './lib/timing.js';

const USAGE = 'usage: node dist/bench/agent-connect.js [--connections N] [--rounds R] [--json]\n';

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
  const [a0, c0, t0] = [processCpuMs(agent.pid), ownCpuMs(), performance.now()];
  for (let i = 0; i < n; i++) await op();
  const [a1, c1, t1] = [processCpuMs(agent.pid), ownCpuMs(), performance.now()];
  return { wallMs: (t1 - t0) / n, agentCpuMs: (a1 - a0) / n, callerCpuMs: (c1 - c0) / n };
}

/** Each field's median over `samples`. */
const medians = (samples: Sample[]): Sample => ({
  wallMs: median(samples.map((x) => x.wallMs)),
  agentCpuMs: median(samples.map((x) => x.agentCpuMs)),
  callerCpuMs: median(samples.map((x) => x.callerCpuMs)),
});

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
  await refuseCrowdedAgentUser();
  const n = Number(values.connections ?? 200);
  const rounds = Number(values.rounds ?? 5);
  if (!Number.isInteger(n) || n < 1 || n > 400 || !Number.isInteger(rounds) || rounds < 1 || rounds > 50) {
    // An agent allows an identity 500 calls a second (burst 1,000): a round stays well under that.
    process.stderr.write(`bench:connect: --connections takes 1-400, --rounds 1-50\n${USAGE}`);
    return 2;
  }
  const workDir = mkdtempSync(join(tmpdir(), 'gaxx-bench-connect-'));
  // Stopped by a signal (Ctrl-C, `timeout`): nothing it started is left running.
  cleanUpOnSignal(() => stopStarted(workDir));
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
    const summary = variants.map((v) => ({ name: v.name, fresh: medians(v.fresh), open: medians(v.open) }));
    if (values.json) process.stdout.write(`${JSON.stringify({ connections: n, rounds, variants: summary })}\n`);
    else {
      const row = (what: string, m: Sample) => [what, ...[m.wallMs, m.agentCpuMs, m.callerCpuMs].map((x) => x.toFixed(2))];
      const rows = summary.flatMap((s) => [row(`${s.name}, new connection + Info`, s.fresh), row(`${s.name}, Info on an open connection`, s.open)]);
      process.stdout.write(
        `agent connection cost, ${n} per round, median of ${rounds} rounds (ms per connection or call)\n${formatTable([['what', 'wall', 'agent', 'caller'], ...rows])}\n`,
      );
    }
    return 0;
  } finally {
    await stopStarted(workDir);
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench:connect: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
