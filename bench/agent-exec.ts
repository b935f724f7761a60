/**
 * Bench: Exec of `true` through a real gaxx-agent over mTLS (tasks sandboxed, and an agent
 * started with --unsafe-no-isolation), beside the two things it is built from, measured in the
 * same run on the same machine:
 *   - spawn: `child_process.spawn('true')` in this process (the cost of starting a process), and
 *     spawn-alone: the same in a child process that holds nothing else (a fork costs more the
 *     more memory its parent maps: the stricter baseline);
 *   - sandbox-alone: bwrap with the agent's sandbox options starting `true`, as the agent's user, in
 *     a process of its own (the cost of the sandbox every sandboxed task gets: that Exec's ceiling);
 *   - unary: a bare grpc-js mTLS unary call (Health.Check on a guard-less server; the cost of one RPC);
 *   - flood: the same Exec of `true` while another identity floods the agent from another address
 *     (127.0.0.2, its own process, connections and calls far beyond the limits), with the agent's
 *     production guards: the ratio flood/agent-exec is what the flood costs a well-behaved caller.
 * Each section gets sequential p50/p99 latency and throughput at 1, 8 and 32 in flight; the
 * output is a table plus ratios (time per op over the baseline's), or JSON with --json.
 *
 * Usage: npm run bench:agent [-- --iterations N] [-- --json]
 * To add a measurement, write a Section and list it in SECTIONS (and its ratios in RATIOS).
 */
import { execFile, type ExecFileOptions } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../scheduler/client/index.js';
import { floodInChild, type FloodResult } from '../test/helpers/flood.js';
import { AGENT_GID, AGENT_UID } from '../test/helpers/agent.js';
import { rawAgentClient } from '../test/helpers/grpc.js';
import { issueCertDir } from '../test/helpers/pki.js';
import { refuseCrowdedAgentUser } from './lib/agent-room.js';
import { benchArgs } from './lib/args.js';
import { startBareServer } from './lib/bare-server.js';
import { startFixture, type BenchFixture } from './lib/fixture.js';
import { planFor, profile, type Measurement, type Plan } from './lib/profile.js';
import { computeRatios, formatMeasurements, formatRatios, type RatioSpec } from './lib/report.js';
import { runToClose } from './lib/spawn-alone.js';

/** What every section gets: the running agent and its PKI, and the plan. */
export interface BenchContext {
  fixture: BenchFixture;
  plan: Plan;
}

/** One measurement of the bench; it must release what it opens. */
export type Section = (ctx: BenchContext) => Promise<Measurement>;

/** No single operation may take longer than this (a stuck call fails the run, never hangs it). */
const OP_DEADLINE_MS = 30_000;
/**
 * Operations per in-flight level. 1,000 keeps a run near 15 s on 2 quiet cores and near a minute
 * when the machine is shared.
 */
const DEFAULT_ITERATIONS = 1000;
/** One section's bound: this, and SECTION_MS_PER_OP per operation of the plan (~4x a sandboxed Exec's time on a busy 2-core machine). */
const SECTION_BASE_MS = 120_000;
const SECTION_MS_PER_OP = 60;
/** In flight at most, plus room: the agent refuses tasks beyond its capacity. */
const AGENT_CAPACITY = 64;

/** Task ids are never reused within a run: the agent would replay a finished task's result. */
let taskSeq = 0;

/** Exec `true` through the typed client, one channel, fresh task id per call (tasks sandboxed). */
const agentExec: Section = (ctx) => execTrue(ctx, ctx.fixture.agent, { name: 'agent-exec', label: 'Exec `true` via AgentClient (sandboxed)' });

/** The same against the agent started with --unsafe-no-isolation. */
const agentExecUnsafe: Section = (ctx) => execTrue(ctx, ctx.fixture.unsafeAgent, { name: 'agent-exec-unsafe', label: 'Exec `true`, --unsafe-no-isolation' });

async function execTrue({ fixture, plan }: BenchContext, agent: BenchFixture['agent'], names: { name: string; label: string }): Promise<Measurement> {
  const client = AgentClient.connect({ address: agent.address, expect: { fleet: 'bench', host: 'h1' } }, fixture.operator);
  const op = async () => {
    const r = await client.run({ taskId: `bench-${process.pid}-${taskSeq++}`, argv: ['true'] }, { deadlineMs: OP_DEADLINE_MS });
    if (r.exit.code !== 0 || r.exit.signal) throw new Error(`true ended with code ${r.exit.code} signal ${r.exit.signal}`);
  };
  try {
    return await profile(names, plan, op, agent.pid);
  } finally {
    client.close();
  }
}

/** The process-start baseline: spawn `true` here, with stdio pipes as the agent uses, until 'close'. */
const spawnTrue: Section = ({ fixture, plan }) =>
  profile({ name: 'spawn', label: "child_process.spawn('true')" }, plan, () => runToClose('true'), fixture.agent.pid);

/**
 * The Measurement that bench/lib/`name`.js prints, run in a child process with `args` after the
 * plan (and `opts`: its cwd, its user).
 */
function measuredInChild(name: string, plan: Plan, args: string[] = [], opts: ExecFileOptions = {}): Promise<Measurement> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'lib', `${name}.js`);
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [script, JSON.stringify(plan), ...args], { timeout: 600_000, maxBuffer: 1 << 20, ...opts }, (e, out, err) =>
      e ? reject(new Error(`${name}: ${e.message}\n${err}`)) : resolve(JSON.parse(String(out)) as Measurement),
    ),
  );
}

/** The same spawn loop in a child process that holds nothing else (bench/lib/spawn-alone.ts). */
const spawnAloneSection: Section = ({ plan }) => measuredInChild('spawn-alone', plan);

/**
 * The sandbox alone (bench/lib/sandbox-alone.ts): bwrap with the agent's sandbox options starting
 * `true`, as the agent's user (nobody, where this runs as root), in a process of its own. Every
 * sandboxed task pays for one such sandbox, started ahead or not: the ceiling of sandboxed Exec.
 */
const sandboxAloneSection: Section = ({ fixture, plan }) => {
  const dir = join(fixture.workDir, 'sandbox-alone');
  mkdirSync(dir, { mode: 0o700 });
  const asAgentUser = process.getuid?.() === 0;
  if (asAgentUser) chownSync(dir, AGENT_UID, AGENT_GID);
  return measuredInChild('sandbox-alone', plan, [dir], { cwd: dir, ...(asAgentUser ? { uid: AGENT_UID, gid: AGENT_GID } : {}) });
};

/**
 * The RPC baseline: a bare grpc-js mTLS unary call (Health.Check on a guard-less server with the
 * agent's certificate; see bench/lib/bare-server.ts), through the same raw client.
 */
const grpcUnary: Section = async ({ fixture, plan }) => {
  const server = await startBareServer(join(fixture.workDir, 'agent'));
  const raw = rawAgentClient(server.address, fixture.operatorDir);
  const op = () =>
    new Promise<void>((resolve, reject) => {
      raw.health.check({ service: '' }, { deadline: Date.now() + OP_DEADLINE_MS }, (e) => (e ? reject(e) : resolve()));
    });
  try {
    return await profile({ name: 'unary', label: 'bare grpc-js mTLS unary (Health.Check)' }, plan, op, fixture.agent.pid);
  } finally {
    raw.close();
    await server.close();
  }
};

/** What the flooder of the last section got (printed beside the tables). */
let floodReport: FloodResult | undefined;

/** Exec `true` as in agentExec, while a flood from another identity and address runs. */
const agentExecUnderFlood: Section = async (ctx) => {
  const { fixture } = ctx;
  const flooder = await issueCertDir(fixture.ca, join(fixture.workDir, 'flooder'), { identity: { role: 'scheduler', name: 'flooder' } });
  const read = (f: string) => readFileSync(join(flooder.dir, f));
  const stop = new AbortController();
  const flooding = floodInChild({
    port: fixture.agent.port,
    localAddress: '127.0.0.2',
    certPem: read('cert.pem'),
    keyPem: read('key.pem'),
    caPem: read('ca.pem'),
    connections: 16,
    concurrency: 64,
    durationMs: 600_000,
    signal: stop.signal,
  });
  // Let the flood reach the agent before measuring.
  await new Promise((r) => setTimeout(r, 1000));
  try {
    const m = await agentExec(ctx);
    return { ...m, name: 'flood', label: 'Exec `true` under a flood from another identity' };
  } finally {
    stop.abort();
    floodReport = await flooding;
  }
};

/** The measurements, run one after another so none disturbs another. */
const SECTIONS: Section[] = [agentExec, agentExecUnsafe, spawnTrue, spawnAloneSection, sandboxAloneSection, grpcUnary, agentExecUnderFlood];
const RATIOS: RatioSpec[] = [
  { of: 'agent-exec', over: 'spawn' },
  { of: 'agent-exec-unsafe', over: 'spawn' },
  { of: 'agent-exec', over: 'spawn-alone' },
  { of: 'agent-exec-unsafe', over: 'spawn-alone' },
  { of: 'agent-exec', over: 'sandbox-alone' },
  // About the ceiling of a sandboxed Exec against spawn here, as each task gets a fresh sandbox
  // (the warm pool moves a sandbox's start off a task's path, not off the machine).
  { of: 'sandbox-alone', over: 'spawn' },
  { of: 'agent-exec', over: 'agent-exec-unsafe' },
  { of: 'agent-exec', over: 'unary' },
  { of: 'flood', over: 'agent-exec' },
];

const USAGE = `usage: node dist/bench/agent-exec.js [--iterations N] [--no-flood] [--no-agent-env] [--fork-spawn] [--json]
  --iterations N  operations per in-flight level (default 1000; sequential: 30% of N, warm-up: 5%)
  --no-flood      skip the flood section (the longest; Exec/spawn figures do not need it)
  --no-agent-env  start the agents without the allocator settings every agent gets (AGENT_ENV), to compare
  --fork-spawn    the agents' launchers start tasks through child_process (GAXX_SPAWN=node), not the native vfork spawn, to compare
  --json          print one JSON document instead of tables
`;

function parseFlags(argv: string[]): { iterations: number; json: boolean; flood: boolean; noAgentEnv: boolean; forkSpawn: boolean } {
  const values = benchArgs(
    USAGE,
    {
      iterations: { type: 'string' },
      json: { type: 'boolean' },
      'no-flood': { type: 'boolean' },
      'no-agent-env': { type: 'boolean' },
      'fork-spawn': { type: 'boolean' },
    },
    argv,
  );
  const iterations = Number(values.iterations ?? DEFAULT_ITERATIONS);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 1_000_000) throw new Error(`--iterations must be an integer in 1..1000000\n${USAGE}`);
  return {
    iterations,
    json: values.json ?? false,
    flood: values['no-flood'] !== true,
    noAgentEnv: values['no-agent-env'] === true,
    forkSpawn: values['fork-spawn'] === true,
  };
}

/**
 * Exec throughput as a share of bare spawn's, per in-flight level (issue targets: >= 80% / >=
 * 60%), against spawn in this process and in a process of its own (the stricter baseline); and
 * a bare sandbox's against spawn: about the ceiling of the sandboxed share on this machine, as
 * every sandboxed task is started in a sandbox of its own.
 */
function throughputLine(ratios: ReturnType<typeof computeRatios>): string {
  const shown = (r: (typeof ratios)[number]): boolean =>
    (r.of.startsWith('agent-exec') && (r.over === 'spawn' || r.over === 'spawn-alone' || r.over === 'sandbox-alone')) ||
    (r.of === 'sandbox-alone' && r.over === 'spawn');
  return ratios
    .filter(shown)
    .map(
      (r) =>
        `${r.of} throughput / ${r.over}: ${r.levels.map((l) => `@${l.inFlight} ${(100 / l.ratio).toFixed(0)}%`).join(', ')}${r.of === 'sandbox-alone' ? ' (a fresh sandbox per task: about the ceiling of a sandboxed Exec here)' : ''}`,
    )
    .join('\n');
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  await refuseCrowdedAgentUser();
  const plan = planFor(flags.iterations);
  const t0 = Date.now();
  const loadStart = loadavg();
  const progress = (s: string) => process.stderr.write(`${s}\n`);
  progress(`starting agent (capacity ${AGENT_CAPACITY}) ...`);
  const fixture = await startFixture({ capacity: AGENT_CAPACITY, noAgentEnv: flags.noAgentEnv, ...(flags.forkSpawn ? { env: { GAXX_SPAWN: 'node' } } : {}) });
  // Bounded even if something stalls below the per-call deadlines: each section gets its own
  // bound, so a run on a busy machine (sandboxed Execs at tens per second) is not cut short
  // by the sections before the one that stalls.
  const sectionMs = SECTION_BASE_MS + (plan.warmupMax + plan.sequential + plan.perLevel * plan.levels.length) * SECTION_MS_PER_OP;
  let watchdog: NodeJS.Timeout | undefined;
  const measurements: Measurement[] = [];
  try {
    for (const section of flags.flood ? SECTIONS : SECTIONS.filter((s) => s !== agentExecUnderFlood)) {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        progress(`a section of the bench exceeded ${sectionMs} ms; stopping`);
        void fixture.close().finally(() => process.exit(1));
      }, sectionMs);
      watchdog.unref();
      const m = await section({ fixture, plan });
      progress(`done: ${m.name}`);
      measurements.push(m);
    }
  } finally {
    clearTimeout(watchdog);
    await fixture.close();
  }
  const ratios = computeRatios(measurements, RATIOS);
  const env = { node: process.version, cpus: cpus().length, loadavgStart: loadStart, loadavgEnd: loadavg() };
  const seconds = (Date.now() - t0) / 1000;
  if (flags.json) {
    const doc = { env, plan, measurements, ratios, flood: floodReport, seconds, workDir: fixture.workDir, agentPid: fixture.agent.pid };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    return;
  }
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(' ');
  process.stdout.write(
    [
      `gaxx agent bench: Exec of \`true\` (node ${env.node}, ${env.cpus} cores, load ${load(env.loadavgStart)} -> ${load(env.loadavgEnd)})`,
      `${plan.sequential} sequential, ${plan.perLevel} per in-flight level, after a warm-up of ${plan.warmupMin} and on in blocks of ${plan.warmup} until steady (at most ${plan.warmupMax}); ${seconds.toFixed(1)} s`,
      '',
      formatMeasurements(measurements),
      '',
      formatRatios(ratios),
      '',
      throughputLine(ratios),
      '',
      floodReport
        ? `flood (127.0.0.2, another identity): ${floodReport.calls} calls, outcomes by grpc-status ${JSON.stringify(floodReport.outcomes)}, ${floodReport.sessionsOpened} sessions`
        : '',
      '',
    ].join('\n'),
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
