/**
 * The `local` provider: a fleet of gaxx-agents on this machine, one process per instance, each
 * on its own loopback address (127.0.0.2, 127.0.0.3, ...) and port (8088 by default), with a
 * fresh certificate from the fleet CA naming that address. Agents refuse root, so when we are
 * root they run as `nobody`, from an installed copy of the agent bundle (a checkout under a
 * 0700 home is unreadable to nobody). Processes outlive the command that started them: each has
 * a record and a pid file in the state dir, and destroy() stops it by pid, after checking that
 * the pid is still that agent.
 */
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { FleetCa, REVOCATION_FILE, writeCertDir, writeFileAtomic } from '../../certs/index.js';
import { GaxxError } from '../../proto/index.js';
import { agentBundlePath, installAgentBundle } from './agent-bundle.js';
import { waitForListening, waitForExit, isAgentProcess } from './local-process.js';
import { fleetTag, hasFleetTag, type CreateRequest, type DestroyOutcome, type Instance, type Provider, type ProviderSettings } from './types.js';

/** The user agents run as when we are root (nobody). */
export const LOCAL_AGENT_UID = 65534;
export const LOCAL_AGENT_GID = 65534;
/** Loopback addresses handed out: 127.0.0.<FIRST_HOST + index>. */
const FIRST_HOST = 2;
const MAX_INSTANCES = 250;

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
    /** Extra gaxx-agent flags, e.g. ['--capacity', '64']. */
    agentArgs: z.array(z.string()).default([]),
    /** PATH the agents (and so their tasks) get. */
    path: z.string().default('/usr/local/bin:/usr/bin:/bin'),
    startTimeoutMs: z.number().int().positive().default(20_000),
    stopTimeoutMs: z.number().int().positive().default(10_000),
  })
  .strict();
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
      rmSync(r.dir, { recursive: true, force: true });
      rmSync(join(o.stateDir, `${id}.pid`), { force: true });
      rmSync(recordPath(id), { force: true });
      return 'deleted';
    },
    async pricePerHour() {
      return 0;
    },
  };
}

/** The loopback address of instance `index`: 127.0.0.2, 127.0.0.3, ... */
export function localAddress(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_INSTANCES) {
    throw new GaxxError('USAGE', `a local fleet has at most ${MAX_INSTANCES} agents (index ${index})`);
  }
  return `127.0.0.${FIRST_HOST + index}`;
}

/**
 * The first address slot that no local agent of ours holds and on which nothing else listens on
 * `port` (another installation's local fleet, or any other program). The slot is the provider's
 * own: a fleet's host index says nothing about which addresses other fleets already use.
 */
async function freeSlot(taken: Set<number>, port: number): Promise<number> {
  for (let i = 0; i < MAX_INSTANCES; i++) {
    if (taken.has(i)) continue;
    if (port === 0 || (await canListen(localAddress(i), port))) return i;
  }
  throw new GaxxError(
    'RESOURCE_EXHAUSTED',
    `no free loopback address for a local agent on port ${port} (127.0.0.${FIRST_HOST}-127.0.0.${FIRST_HOST + MAX_INSTANCES - 1} are taken)`,
  );
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
  const index = await freeSlot(new Set(existing.map((r) => r.index)), o.port);
  const address = localAddress(index);
  const bundle = prepareRunDir(o);
  const dir = join(o.runDir, id);
  const certs = join(dir, 'certs');
  const data = join(dir, 'data');
  const audit = join(dir, 'audit');
  // The agent's own state (task journal, newest revocation list), outside the data dir.
  const state = join(dir, 'state');
  for (const d of [dir, certs, data, audit, state]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const ca = FleetCa.open(o.caDir);
  const made = await ca.issue({ identity: { role: 'agent', fleet: req.fleet, host: req.label }, hosts: [address] });
  const revoked = join(o.caDir, REVOCATION_FILE);
  writeCertDir(certs, {
    certPem: made.certPem,
    keyPem: made.keyPem,
    caPem: ca.certPem,
    ...(existsSync(revoked) ? { revokedText: readFileSync(revoked, 'utf8') } : {}),
  });
  if (isRoot()) for (const d of [certs, data, audit, state]) chownTree(d);
  chmodSync(dir, 0o711);
  const log = join(dir, 'agent.log');
  const fd = openSync(log, 'w', 0o600);
  const args = [
    bundle,
    '--listen',
    `${address}:${o.port}`,
    '--certs',
    certs,
    '--data-dir',
    data,
    '--state-dir',
    state,
    '--audit-log',
    join(audit, 'audit.log'),
    ...o.agentArgs,
  ];
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { PATH: o.path },
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
    pid,
    dir,
    bundle,
    createdAt: new Date().toISOString(),
  };
  // Recorded before waiting, so that a start that hangs can still be deleted by pid.
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(o.stateDir, `${id}.json`), JSON.stringify(rec, null, 2), 0o600);
  writeFileAtomic(join(o.stateDir, `${id}.pid`), `${pid}\n`, 0o600);
  const port = await waitForListening(child, log, o.startTimeoutMs);
  if (port !== rec.port) {
    rec.port = port;
    writeFileAtomic(join(o.stateDir, `${id}.json`), JSON.stringify(rec, null, 2), 0o600);
  }
  return rec;
}

/** Root-owned 0711 run dir (others may traverse, not list) holding the installed bundle. */
function prepareRunDir(o: Resolved): string {
  mkdirSync(o.runDir, { recursive: true, mode: 0o711 });
  const st = lstatSync(o.runDir);
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) {
    throw new GaxxError('INSECURE_FILE_MODE', `${o.runDir} must be a directory owned by us and writable only by us`);
  }
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
