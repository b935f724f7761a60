/**
 * The one agent fixture: starts the bundled agent (dist/bundle/gaxx-agent.mjs, so run `npm run
 * build` first) as a real process for integration tests, runs its subcommands, and names the
 * bundle bootstrap uploads. When the tests run as root, the agent runs as nobody
 * (uid/gid 65534) with its cert and data dirs chowned to it, since production refuses root.
 * The agent runs from an installed copy (installAgentBundle: a 0755 dir in the temp dir), never
 * from the checkout, which nobody may not be able to read (a clone in root's 0700 home).
 * Every process is tracked; call stopAllAgents() in afterAll.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { taskWritableRoot } from './task-writable.js';
import { fileURLToPath } from 'node:url';
import { AGENT_ENV, agentBundlePath, agentNodeFlags, installAgentBundle } from '../../cli/providers/agent-bundle.js';
import { eventually } from './poll.js';
import { dyingWithTest, withInherited } from './procs.js';

export const AGENT_UID = 65534;
export const AGENT_GID = 65534;

/** The repository root (holding package.json), from src or dist. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    if (dir === '/') throw new Error('package.json not found above test/helpers');
    dir = dirname(dir);
  }
  return dir;
}

/** The built agent bundle (dist/bundle/gaxx-agent.mjs): what bootstrap uploads to a host. */
export function builtAgentBundle(): string {
  return agentBundlePath(join(repoRoot(), 'package.json'));
}

let installed: string | undefined;

/** The installed agent bundle every helper runs (installed on first use, once per process). */
export function agentMain(): string {
  installed ??= installAgentBundle({ source: builtAgentBundle() });
  return installed;
}

/** Runs `gaxx-agent ARGS` that ends on its own (a subcommand, --help) as our user; never rejects. */
export function runAgentCli(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [agentMain(), ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } }, (e, stdout, stderr) =>
      done({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr }),
    );
  });
}

export interface StartAgentOptions {
  certsDir: string;
  /** Default: a fresh dir beside certsDir. */
  dataDir?: string;
  /** Extra environment (the agent gets only PATH, AGENT_ENV and this, plus GAXX_ENV when given). */
  env?: Record<string, string>;
  /** Extra flags after the defaults (later flags win). Defaults: --listen 127.0.0.1:0, --shutdown-grace 2s. */
  args?: string[];
  /** Keep our uid (root here) instead of dropping to nobody. */
  asRoot?: boolean;
  /** Pass `--metrics-listen 127.0.0.1:0` (default true). */
  metrics?: boolean;
  /** The agent bundle to install and run (default: the checkout's dist/bundle/gaxx-agent.mjs). */
  agentBundle?: string;
  /** An agent entry to run where it is, not installed (e.g. the tsc build's dist/agent/main.js); wins over agentBundle. */
  entry?: string;
  /** Node's flags for the agent (default agentNodeFlags(entry), as every agent is started). */
  nodeFlags?: readonly string[];
  /** The environment every agent gets (default AGENT_ENV); `env` adds to it. */
  agentEnv?: Readonly<Record<string, string>>;
  /**
   * The agent makes its own dirs from `dataDir` (required then), as in production: the helper
   * neither creates nor chowns them and passes no --audit-log or --state-dir. For tests of a
   * data dir the agent cannot create.
   */
  ownDirs?: boolean;
  /** Descriptors of this process the agent gets, as [its fd, ours]: without close-on-exec, as a shell or a CI runner leaves them. */
  inheritFds?: Array<[number, number]>;
  /** A descriptor of ours for the agent's stderr (default: a pipe the helper reads). */
  stderrFd?: number;
}

export interface AgentProcess {
  /** '127.0.0.1:PORT' of the gRPC port. */
  address: string;
  port: number;
  metricsPort: number | undefined;
  profilingPort: number | undefined;
  pid: number;
  dataDir: string;
  /** The agent's audit log (outside its data dir). */
  auditLog: string;
  /** SIGTERM, then waits for exit (SIGKILL after 10 s); resolves to the exit code. */
  stop(): Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
  /** Everything the agent wrote to stderr so far. */
  stderr(): string;
  exited: Promise<number | null>;
}

const live = new Set<ChildProcess>();

function chownTree(p: string): void {
  chownSync(p, AGENT_UID, AGENT_GID);
  if (lstatSync(p).isDirectory()) for (const e of readdirSync(p)) chownTree(join(p, e));
}

/** Lets nobody traverse our temp dirs (mkdtemp makes them 0700). */
function openAncestors(p: string): void {
  const tmp = resolve(tmpdir());
  for (let d = dirname(resolve(p)); d.startsWith(tmp + '/'); d = dirname(d)) {
    const mode = statSync(d).mode & 0o777;
    if ((mode & 0o011) !== 0o011) chmodSync(d, mode | 0o011);
  }
}

/** The agent's dirs (made and chowned here unless `ownDirs`) and the flags naming them. */
function agentDirs(o: StartAgentOptions, drop: boolean): { dataDir: string; auditLog: string; flags: string[] } {
  const dataDir = o.dataDir ?? join(dirname(resolve(o.certsDir)), `data-${process.pid}-${live.size}-${Date.now()}`);
  // The audit log lives outside the data dir (file RPCs must not reach it), as does the agent's
  // state (the task journal, the newest revocation list seen).
  const auditDir = `${dataDir}-audit`;
  const auditLog = join(auditDir, 'audit.log');
  const stateDir = `${dataDir}-state`;
  if (drop && existsSync(o.certsDir)) chownTree(o.certsDir);
  if (drop) openAncestors(o.certsDir);
  if (o.ownDirs) return { dataDir, auditLog, flags: ['--data-dir', dataDir] };
  for (const d of [dataDir, auditDir, stateDir]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    if (drop) chownTree(d);
  }
  if (drop) openAncestors(dataDir);
  return { dataDir, auditLog, flags: ['--data-dir', dataDir, '--audit-log', auditLog, '--state-dir', stateDir] };
}

function launch(o: StartAgentOptions): { child: ChildProcess; dataDir: string; auditLog: string; out: { text: string } } {
  const drop = !o.asRoot && process.getuid?.() === 0;
  const { dataDir, auditLog, flags } = agentDirs(o, drop);
  const main = o.entry ?? (o.agentBundle ? installAgentBundle({ source: o.agentBundle }) : agentMain());
  // Started as bootstrap and the local provider start agents: with the same Node flags.
  const args = [...(o.nodeFlags ?? agentNodeFlags(main)), main, '--listen', '127.0.0.1:0', '--certs', o.certsDir, ...flags];
  args.push('--shutdown-grace', '2s');
  // Tests let tasks write marker files in one dir of their own (markerDir); production agents
  // have no writable dir but a task's work dir. Never one that holds the agent's own dirs: the
  // agent refuses that (a task could move its cert dir aside).
  args.push('--task-writable', taskWritableRoot());
  if (o.metrics ?? true) args.push('--metrics-listen', '127.0.0.1:0');
  args.push(...(o.args ?? []));
  const child = spawn(...dyingWithTest(process.execPath, args), {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(o.agentEnv ?? AGENT_ENV), ...o.env },
    stdio: withInherited(['ignore', 'ignore', o.stderrFd ?? 'pipe'], o.inheritFds),
    ...(drop ? { uid: AGENT_UID, gid: AGENT_GID } : {}),
  });
  live.add(child);
  const out = { text: '' };
  child.stderr?.on('data', (b: Buffer) => (out.text += b.toString()));
  child.on('exit', () => live.delete(child));
  return { child, dataDir, auditLog, out };
}

function exitPromise(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
}

/** Starts an agent and waits for its "agent listening" line (45 s at most: a loaded machine starts slowly). */
export async function startAgent(o: StartAgentOptions): Promise<AgentProcess> {
  const { child, dataDir, auditLog, out } = launch(o);
  const exited = exitPromise(child);
  const line = await new Promise<Record<string, unknown>>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent did not start in 45 s: ${out.text}`)), 45_000);
    const check = () => {
      const l = out.text.split('\n').find((s) => s.includes('"agent listening"'));
      if (l) {
        clearTimeout(timer);
        resolvePromise(JSON.parse(l) as Record<string, unknown>);
      }
    };
    child.stderr?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code}: ${out.text}`));
    });
  });
  const port = line.grpcPort as number;
  const stop = async () => {
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(t);
    return code;
  };
  return {
    address: `127.0.0.1:${port}`,
    port,
    metricsPort: (line.metricsPort as number | null) ?? undefined,
    profilingPort: (line.profilingPort as number | null) ?? undefined,
    pid: child.pid as number,
    dataDir,
    auditLog,
    stop,
    kill: (signal = 'SIGKILL') => child.kill(signal),
    stderr: () => out.text,
    exited,
  };
}

/** Runs an agent that should refuse to start; its exit code and stderr (killed after 15 s). */
export async function runAgentExpectFailure(o: StartAgentOptions): Promise<{ code: number | null; stderr: string }> {
  const { child, out } = launch(o);
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const code = await exitPromise(child);
  clearTimeout(t);
  return { code, stderr: out.text };
}

/**
 * Starts an agent whose stderr goes to `stderrFd` (so no "agent listening" line to wait for) on
 * gRPC port `port`: ready once the port takes a connection (45 s at most). Its exit code, or
 * null when it had to be killed: SIGTERM `stop()` waits `graceMs` (20 s) for it, then SIGKILL.
 */
export async function startAgentUnheard(
  o: StartAgentOptions & { stderrFd: number },
  port: number,
): Promise<{ pid: number; exited: Promise<number | null>; stop(graceMs?: number): Promise<number | null> }> {
  const { child } = launch({ ...o, args: ['--listen', `127.0.0.1:${port}`, ...(o.args ?? [])] });
  const exited = exitPromise(child);
  let gone = false;
  void exited.then(() => (gone = true));
  const accepts = () =>
    new Promise<boolean>((done) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), done(true)));
      s.once('error', () => done(false));
    });
  if (!(await eventually(async () => gone || (await accepts()), 45_000))) throw new Error(`agent on port ${port} did not start in 45 s`);
  if (gone) throw new Error(`agent on port ${port} exited with ${String(await exited)} before it listened`);
  return {
    pid: child.pid as number,
    exited,
    async stop(graceMs = 20_000) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

/**
 * Stops every agent this process started (for afterAll): SIGTERM, so each kills its tasks'
 * process groups (after its --shutdown-grace, 2 s by default here), then SIGKILL after 8 s.
 */
export async function stopAllAgents(): Promise<void> {
  const all = [...live];
  for (const c of all) c.kill('SIGTERM');
  const t = setTimeout(() => all.forEach((c) => c.kill('SIGKILL')), 8000);
  await Promise.all(all.map(exitPromise));
  clearTimeout(t);
}

/** The agent's audit log, one object per JSON line. */
export function auditEvents(auditLog: string): Array<Record<string, unknown>> {
  return readFileSync(auditLog, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export { markerDir, markerFile, taskWritableRoot } from './task-writable.js';

/** Pings every 1 s, 1 s to answer: a stalled agent's streams break after about 2 s. */
export const FAST_KEEPALIVE = { timeMs: 1000, timeoutMs: 1000 };
/** Agent flags that accept those pings (an agent's default refuses pings closer than 10 s). */
export const FAST_PING_GUARDS = ['--guards', JSON.stringify({ minPingIntervalMs: 500 })];
