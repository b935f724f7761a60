/**
 * The `local` provider: a fleet of gaxx-agents on this machine, one process per instance, each
 * on its own loopback address (127.0.0.2, 127.0.0.3, ...) and port (8088 by default), its
 * metrics beside it (on a free port, reported as Instance.metrics), with a fresh certificate
 * from the fleet CA naming that address. Agents refuse root, so when we are root they run as
 * `nobody`, from an installed copy of the agent bundle (a checkout under a 0700 home is
 * unreadable to nobody). Processes outlive the command that started them: each has a record and
 * a pid file in the state dir, and destroy() stops it by pid, after checking that the pid is
 * still that agent. The run dir is shared by every installation of this user (GAXX_HOME); each
 * keeps its agents' files in a folder of its own there (installationDir), so that two homes'
 * fleets of the same name never share an agent's certificates, data or state.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { FleetCa, REVOCATION_FILE, writeCertDir, writeFileAtomic } from '../../certs/index.js';
import { GaxxError, inside, removeTree } from '../../proto/index.js';
import { checkOwnDir } from '../local-dirs.js';
import { AGENT_ENV, agentBundlePath, agentNodeFlags, fleetSinceArgs, installAgentBundle } from './agent-bundle.js';
import { waitForListening, waitForExit, isAgentProcess } from './local-process.js';
import { fleetTag, hasFleetTag, type CreateRequest, type DestroyOutcome, type Instance, type Provider, type ProviderSettings } from './types.js';

/** The user agents run as when we are root (nobody). */
export const LOCAL_AGENT_UID = 65534;
export const LOCAL_AGENT_GID = 65534;
/** Loopback addresses handed out: 127.0.0.<FIRST_HOST + index>. */
const FIRST_HOST = 2;
const MAX_INSTANCES = 250;
/** A local task's process limit: room for MAX_INSTANCES agents of one user (~24 each at rest) and their tasks. */
const LOCAL_TASK_PROCESSES = 16_384;

/** provider options (ProviderSettings.options), validated once here. */
export const LocalOptionsSchema = z
  .object({
    /** The fleet CA directory (GaxxPaths.caDir). */
    caDir: z.string().min(1),
    /** Records and pid files: e.g. `<stateDir>/local`. */
    stateDir: z.string().min(1),
    /** Agents' code, certs and data; must be reachable by the agent user (default: `<tmpdir>/gaxx-local-<uid>`). */
    runDir: z.string().min(1).optional(),
    /** The agent bundle to install (default: the one beside this code). */
    agentBundle: z.string().min(1).optional(),
    port: z.number().int().min(0).max(65535).default(8088),
    /**
     * The agents' Prometheus port (mTLS), on each agent's own address. Default 0: each agent
     * picks a free one, kept in its record and reported with its instance (Instance.metrics), so
     * that the fleet directory tells the dashboard where to look; local fleets of several
     * installations, started at once, never race for one port.
     */
    metricsPort: z.number().int().min(0).max(65535).default(0),
    /** Extra gaxx-agent flags, e.g. ['--capacity', '64']. */
    agentArgs: z.array(z.string()).default([]),
    /**
     * Dirs of this installation the agents' tasks must not see (the CLI's config and state dirs:
     * the fleet CA's key, the operator's, SSH keys, the embedded Redis). Agents started by a user
     * other than root run as that user, and could otherwise read them; each agent hides its
     * user's home besides (see agent/exec/task-launch.ts).
     */
    hideFromTasks: z.array(z.string().min(1)).default([]),
    /** PATH the agents (and so their tasks) get. */
    path: z.string().default('/usr/local/bin:/usr/bin:/bin'),
    startTimeoutMs: z.number().int().positive().default(20_000),
    stopTimeoutMs: z.number().int().positive().default(10_000),
  })
  .strict()
  .refine((o) => o.metricsPort === 0 || o.metricsPort !== o.port, {
    message: 'the agents cannot serve gRPC and metrics on one port',
    path: ['metricsPort'],
  });
export type LocalOptions = z.input<typeof LocalOptionsSchema>;
type Resolved = z.output<typeof LocalOptionsSchema> & { runDir: string };

/** What the state dir keeps per instance. */
interface LocalRecord {
  id: string;
  fleet: string;
  label: string;
  tags: string[];
  index: number;
  address: string;
  port: number;
  /** Where the agent serves its metrics, on `address` (records made before they were served have none). */
  metricsPort?: number;
  pid: number;
  /** The agent's files (certs, data, audit, log). */
  dir: string;
  /** The installed bundle the process runs (its pid is checked against it). */
  bundle: string;
  createdAt: string;
}

function parseOptions(settings: ProviderSettings): Resolved {
  const r = LocalOptionsSchema.safeParse(settings.options ?? {});
  if (!r.success) {
    const text = r.error.issues.map((i) => `options.${i.path.join('.')}: ${i.message}`).join('; ');
    throw new GaxxError('CONFIG_INVALID', `local provider: ${text}`);
  }
  return { ...r.data, runDir: r.data.runDir ?? join(tmpdir(), `gaxx-local-${process.getuid?.() ?? 'u'}`) };
}

const isRoot = () => process.getuid?.() === 0;

/** Builds the local provider. */
export function createLocalProvider(settings: ProviderSettings): Provider {
  const o = parseOptions(settings);
  const recordPath = (id: string) => join(o.stateDir, `${id}.json`);
  const records = (): LocalRecord[] =>
    existsSync(o.stateDir)
      ? readdirSync(o.stateDir)
          .filter((f) => f.endsWith('.json'))
          .map((f) => JSON.parse(readFileSync(join(o.stateDir, f), 'utf8')) as LocalRecord)
      : [];
  const toInstance = (r: LocalRecord): Instance => ({
    id: r.id,
    provider: 'local',
    label: r.label,
    tags: r.tags,
    status: isAgentProcess(r.pid, r.bundle) ? 'running' : 'stopped',
    ipv4: r.address,
    region: 'local',
    type: 'process',
    createdAt: r.createdAt,
    pricePerHour: 0,
    ...(r.metricsPort ? { metrics: `${r.address}:${r.metricsPort}` } : {}),
  });
  return {
    name: 'local',
    capabilities: { creates: true, destroys: true, userData: false, maxInstances: MAX_INSTANCES, startsAgent: true },
    async create(req: CreateRequest) {
      const rec = await startLocalAgent(o, req, records());
      return toInstance(rec);
    },
    async list(fleet) {
      return records()
        .filter((r) => hasFleetTag(r, fleet))
        .map(toInstance);
    },
    async get(id) {
      const r = records().find((x) => x.id === id);
      return r && toInstance(r);
    },
    async destroy(fleet, id): Promise<DestroyOutcome> {
      const r = existsSync(recordPath(id)) ? (JSON.parse(readFileSync(recordPath(id), 'utf8')) as LocalRecord) : undefined;
      if (!r) return 'gone';
      if (!hasFleetTag(r, fleet)) return 'refused';
      await stopLocalAgent(r, o.stopTimeoutMs);
      // Its tasks and PutFile shaped the tree: any depth goes (removeTree), not only what fits Node's stack.
      await removeTree(r.dir);
      removeEmptyInstallationDir(o, r.dir);
      rmSync(join(o.stateDir, `${id}.pid`), { force: true });
      rmSync(recordPath(id), { force: true });
      rmSync(join(o.stateDir, 'slots', String(r.index)), { force: true });
      return 'deleted';
    },
    async pricePerHour() {
      return 0;
    },
  };
}

/**
 * `--task-hidden` for the installation's dirs that agents' tasks must not see (hideFromTasks), or
 * nothing. A dir that holds the agents' own (runDir: their data) cannot be hidden from their
 * tasks: spawn is refused rather than started with the keys in view.
 */
export function taskHiddenArgs(o: Pick<Resolved, 'hideFromTasks' | 'runDir'>): string[] {
  const dirs = o.hideFromTasks.map((d) => resolve(d));
  const over = dirs.filter((d) => inside(d, resolve(o.runDir)));
  if (over.length > 0)
    throw new GaxxError(
      'CONFIG_INVALID',
      `local provider: the agents' dir ${o.runDir} lies in ${over.join(', ')}, which their tasks must not see; choose another runDir`,
    );
  const odd = dirs.filter((d) => d.includes(':'));
  if (odd.length > 0) throw new GaxxError('CONFIG_INVALID', `local provider: cannot hide ${odd.join(', ')} from tasks (a ':' in the path)`);
  return dirs.length > 0 ? ['--task-hidden', dirs.join(':')] : [];
}

/** The loopback address of instance `index`: 127.0.0.2, 127.0.0.3, ... */
export function localAddress(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_INSTANCES) {
    throw new GaxxError('USAGE', `a local fleet has at most ${MAX_INSTANCES} agents (index ${index})`);
  }
  return `127.0.0.${FIRST_HOST + index}`;
}

/** How long a claimed slot without a record counts as a start in progress (then it is stale). */
const CLAIM_STALE_MS = 5 * 60_000;

/**
 * Claims the first address slot that no local agent of ours holds or is starting on, and on
 * which nothing else listens on `port` or `metricsPort` (another installation's local fleet, or
 * any other program). The slot is the provider's own: a fleet's host index says nothing about
 * which addresses other fleets use. A claim is a file `<stateDir>/slots/<slot>` created
 * exclusively, so creates running at once (in this process or in another gaxx) never pick the
 * same address; destroy releases it.
 */
async function claimSlot(o: Resolved, id: string, existing: LocalRecord[]): Promise<number> {
  const slots = join(o.stateDir, 'slots');
  mkdirSync(slots, { recursive: true, mode: 0o700 });
  const held = new Set(existing.map((r) => r.index));
  const ids = new Set(existing.map((r) => r.id));
  for (let i = 0; i < MAX_INSTANCES; i++) {
    if (held.has(i) || !takeClaim(join(slots, String(i)), id, ids)) continue;
    if (await portsFree(localAddress(i), [o.port, o.metricsPort])) return i;
    rmSync(join(slots, String(i)), { force: true });
  }
  throw new GaxxError(
    'RESOURCE_EXHAUSTED',
    `no free loopback address for a local agent on port ${o.port} (127.0.0.${FIRST_HOST}-127.0.0.${FIRST_HOST + MAX_INSTANCES - 1} are taken)`,
  );
}

/** Creates the claim file; an existing one is taken over only when it is stale (no record, old). */
function takeClaim(path: string, id: string, ids: Set<string>): boolean {
  try {
    writeFileSync(path, id, { flag: 'wx', mode: 0o600 });
    return true;
  } catch {
    try {
      const owner = readFileSync(path, 'utf8');
      if (ids.has(owner) || Date.now() - statSync(path).mtimeMs < CLAIM_STALE_MS) return false;
      rmSync(path, { force: true });
      writeFileSync(path, id, { flag: 'wx', mode: 0o600 });
      return true;
    } catch {
      return false;
    }
  }
}

/** Whether every non-zero port of `ports` can be bound on `address` right now. */
async function portsFree(address: string, ports: number[]): Promise<boolean> {
  for (const port of ports) if (port !== 0 && !(await canListen(address, port))) return false;
  return true;
}

/** Whether `address:port` can be bound right now (closed again at once). */
function canListen(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: address, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Issues the agent's certificate, lays out its files and starts it; resolves once it listens. */
async function startLocalAgent(o: Resolved, req: CreateRequest, existing: LocalRecord[]): Promise<LocalRecord> {
  const id = `${req.fleet}-${req.label}`;
  if (existing.some((r) => r.id === id)) throw new GaxxError('ALREADY_EXISTS', `local instance ${id} exists`);
  const index = await claimSlot(o, id, existing);
  try {
    return await launchAgent(o, req, id, index);
  } catch (e) {
    // Nothing recorded yet holds the slot when the start failed before the record was written.
    if (!existsSync(join(o.stateDir, `${id}.json`))) rmSync(join(o.stateDir, 'slots', String(index)), { force: true });
    throw e;
  }
}

/**
 * How the provider writes its agents' files (certs, record, pid): whole (written, then renamed),
 * not forced to disk. They describe processes of this machine, which a power loss ends with any
 * write it undoes: a record lost with its agent reads as a host that is gone, and its address
 * claim goes stale as one without a record does. Forced, they were 12 of the 23 fsyncs of each
 * agent's start, waited for on the thread that starts the others (1.8 ms each on a quiet disk,
 * more while agents start beside them). The CA's register of what it issued, and the fleet's
 * state, stay durable: theirs outlive the agents.
 */
const AGENT_FILES = { durable: false } as const;

/**
 * This installation's folder in the run dir: named after its state dir (one per GAXX_HOME), 0711
 * like the run dir (the agent user passes through it to its own files).
 */
function installationDir(o: Resolved): string {
  const dir = join(o.runDir, `home-${createHash('sha256').update(resolve(o.stateDir)).digest('hex').slice(0, 16)}`);
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  chmodSync(dir, 0o711);
  return dir;
}

/**
 * Removes the installation dir that held the host dir `hostDir` once it holds nothing else (its
 * last host was destroyed): rmdir fails on a dir that is not empty, so a host another create
 * has just made there keeps it, and launchAgent sets the dir's mode again once its host dir is
 * in it (a create that lost the dir in between made it again with the mode of its umask).
 */
function removeEmptyInstallationDir(o: Resolved, hostDir: string): void {
  const home = dirname(hostDir);
  if (resolve(dirname(home)) !== resolve(o.runDir) || !basename(home).startsWith('home-')) return;
  try {
    rmdirSync(home);
  } catch {
    // Not empty (another host of this installation), or already gone.
  }
}

/** Lays out the agent's files in slot `index` and starts it; resolves once it listens. */
async function launchAgent(o: Resolved, req: CreateRequest, id: string, index: number): Promise<LocalRecord> {
  const address = localAddress(index);
  const bundle = prepareRunDir(o);
  const home = installationDir(o);
  const dir = join(home, id);
  const certs = join(dir, 'certs');
  const data = join(dir, 'data');
  const audit = join(dir, 'audit');
  // The agent's own state (task journal, newest revocation list), outside the data dir.
  const state = join(dir, 'state');
  for (const d of [dir, certs, data, audit, state]) mkdirSync(d, { recursive: true, mode: 0o700 });
  // Its host dir in it now, the installation dir cannot go (removeEmptyInstallationDir).
  chmodSync(home, 0o711);
  const ca = FleetCa.open(o.caDir);
  const made = await ca.issue({ identity: { role: 'agent', fleet: req.fleet, host: req.label }, hosts: [address] });
  const revoked = join(o.caDir, REVOCATION_FILE);
  writeCertDir(
    certs,
    {
      certPem: made.certPem,
      keyPem: made.keyPem,
      caPem: ca.certPem,
      ...(existsSync(revoked) ? { revokedText: readFileSync(revoked, 'utf8') } : {}),
    },
    AGENT_FILES,
  );
  if (isRoot()) for (const d of [certs, data, audit, state]) chownTree(d);
  chmodSync(dir, 0o711);
  const log = join(dir, 'agent.log');
  const fd = openSync(log, 'w', 0o600);
  const args = [
    ...agentNodeFlags(bundle),
    bundle,
    '--listen',
    `${address}:${o.port}`,
    // As every fleet's agents do: the dashboard (the daemon's or `gaxx ui`'s) collects them.
    '--metrics-listen',
    `${address}:${o.metricsPort}`,
    '--certs',
    certs,
    '--data-dir',
    data,
    '--state-dir',
    state,
    '--audit-log',
    join(audit, 'audit.log'),
    // Every local agent runs as the same user, and a task's process limit (RLIMIT_NPROC) counts
    // that user's processes and threads across all of them: a 50-agent fleet holds ~1,200 at
    // rest (agent, launcher, warm sandboxes), over the default 1,024 a lone host's tasks get.
    '--task-limits',
    JSON.stringify({ processes: LOCAL_TASK_PROCESSES }),
    ...taskHiddenArgs(o),
    ...fleetSinceArgs(req.fleetSince),
    ...o.agentArgs,
  ];
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { PATH: o.path, ...AGENT_ENV },
    ...(isRoot() ? { uid: LOCAL_AGENT_UID, gid: LOCAL_AGENT_GID } : {}),
  });
  closeSync(fd);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new GaxxError('UNAVAILABLE', `could not start gaxx-agent for ${id}`);
  const rec: LocalRecord = {
    id,
    fleet: req.fleet,
    label: req.label,
    tags: [fleetTag(req.fleet), ...(req.tags ?? [])],
    index,
    address,
    port: o.port,
    metricsPort: o.metricsPort,
    pid,
    dir,
    bundle,
    createdAt: new Date().toISOString(),
  };
  // Recorded before waiting, so that a start that hangs can still be deleted by pid.
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(o.stateDir, `${id}.json`), JSON.stringify(rec, null, 2), 0o600, AGENT_FILES);
  writeFileAtomic(join(o.stateDir, `${id}.pid`), `${pid}\n`, 0o600, AGENT_FILES);
  const ports = await waitForListening(child, log, o.startTimeoutMs);
  if (ports.grpc !== rec.port || ports.metrics !== rec.metricsPort) {
    rec.port = ports.grpc;
    rec.metricsPort = ports.metrics;
    writeFileAtomic(join(o.stateDir, `${id}.json`), JSON.stringify(rec, null, 2), 0o600, AGENT_FILES);
  }
  return rec;
}

/** Root-owned 0711 run dir (others may traverse, not list) holding the installed bundle. */
function prepareRunDir(o: Resolved): string {
  mkdirSync(o.runDir, { recursive: true, mode: 0o711 });
  checkOwnDir(o.runDir, 'the local fleet run dir');
  chmodSync(o.runDir, 0o711);
  return installAgentBundle({ source: o.agentBundle ?? agentBundlePath(), dir: join(o.runDir, 'bin') });
}

function chownTree(p: string): void {
  chownSync(p, LOCAL_AGENT_UID, LOCAL_AGENT_GID);
  if (lstatSync(p).isDirectory()) for (const e of readdirSync(p)) chownTree(join(p, e));
}

/** SIGTERM (the agent drains its tasks), SIGKILL after `timeoutMs`; only if the pid is still the agent. */
async function stopLocalAgent(r: LocalRecord, timeoutMs: number): Promise<void> {
  if (!isAgentProcess(r.pid, r.bundle)) return;
  process.kill(r.pid, 'SIGTERM');
  if (await waitForExit(r.pid, r.bundle, timeoutMs)) return;
  if (isAgentProcess(r.pid, r.bundle)) process.kill(r.pid, 'SIGKILL');
  await waitForExit(r.pid, r.bundle, timeoutMs);
}
