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
 * fleets of the same name never share an agent's certificates, data or state. Their agents share
 * the loopback too: addresses are claimed in the user's run dir for all installations
 * (local-slots.ts).
 */
import { chmodSync, closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { FleetCa, REVOCATION_FILE, writeCertDir, writeFileAtomic } from '../../certs/index.js';
import { GaxxError, inside, isGaxxError, makeDirs, removeTree, spawnDetached } from '../../proto/index.js';
import { AGENT_ENV, agentNodeFlags, fleetSinceArgs } from './agent-bundle.js';
import { waitForListening, waitForExit, isAgentProcess } from './local-process.js';
import {
  chownTree,
  installationDir,
  installationKey,
  LOCAL_AGENT_GID,
  LOCAL_AGENT_UID,
  prepareRunDir,
  removeEmptyInstallationDir,
  userRunDir,
} from './local-files.js';
import { claimSlot, localAddress, MAX_INSTANCES, prepareSlotsDir, recordSlotAgent, releaseSlot } from './local-slots.js';

export { LOCAL_AGENT_UID } from './local-files.js';
import { fleetTag, hasFleetTag, type CreateRequest, type DestroyOutcome, type Instance, type Provider, type ProviderSettings } from './types.js';

/**
 * How many addresses one create tries: an agent that cannot listen on its address (something
 * bound it after the address was found free) is started again on the next free one.
 */
const START_ATTEMPTS = 5;

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
  return { ...r.data, runDir: r.data.runDir ?? userRunDir() };
}

const isRoot = () => process.getuid?.() === 0;

/** Builds the local provider. */
export function createLocalProvider(settings: ProviderSettings): Provider {
  const o = parseOptions(settings);
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
    status: isAgentRunning(r) ? 'running' : 'stopped',
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
      const r = readRecord(o, id);
      if (!r) return 'gone';
      if (!hasFleetTag(r, fleet)) return 'refused';
      await stopLocalAgent(r, o.stopTimeoutMs);
      await forgetAgent(o, r);
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

/** Who holds an instance's address claim: the instance, of this installation (the claims are shared by all). */
const claimant = (o: Resolved, id: string): string => `${installationKey(o.stateDir)}/${id}`;

/**
 * Removes what is left of a stopped agent: its files, pid file and record, and its address claim
 * (a claim is another's once this one went stale and was taken over: that one stays).
 */
async function forgetAgent(o: Resolved, r: LocalRecord): Promise<void> {
  // Its tasks and PutFile shaped the tree: any depth goes (removeTree), not only what fits Node's stack.
  await removeTree(r.dir);
  removeEmptyInstallationDir(o.runDir, r.dir);
  rmSync(join(o.stateDir, `${r.id}.pid`), { force: true });
  rmSync(join(o.stateDir, `${r.id}.json`), { force: true });
  releaseSlot(prepareSlotsDir(userRunDir()), r.index, claimant(o, r.id));
  // Where claims were kept before they were shared by all installations.
  rmSync(join(o.stateDir, 'slots', String(r.index)), { force: true });
}

/**
 * Issues the agent's certificate, lays out its files and starts it; resolves once it listens. An
 * agent that exits because its address was bound meanwhile (by anything: the address was free
 * when claimed) is started again on the next free address, up to START_ATTEMPTS addresses.
 */
async function startLocalAgent(o: Resolved, req: CreateRequest, existing: LocalRecord[]): Promise<LocalRecord> {
  const id = `${req.fleet}-${req.label}`;
  if (existing.some((r) => r.id === id)) throw new GaxxError('ALREADY_EXISTS', `local instance ${id} exists`);
  const slots = prepareSlotsDir(userRunDir());
  const by = claimant(o, id);
  // This installation's recorded hosts keep their addresses, also one whose agent stopped.
  const skip = new Set(existing.map((r) => r.index));
  for (let attempt = 1; ; attempt++) {
    const index = await claimSlot(slots, [o.port, o.metricsPort], by, skip);
    try {
      return await launchAgent(o, req, id, index, (pid) => recordSlotAgent(slots, index, by, pid));
    } catch (e) {
      const recorded = readRecord(o, id);
      const retry = attempt < START_ATTEMPTS && isGaxxError(e, 'UNAVAILABLE') && e.details?.addressInUse === true;
      if (retry && recorded) await forgetAgent(o, recorded);
      // Nothing recorded holds the slot when the start failed before the record was written.
      else if (!recorded) releaseSlot(slots, index, by);
      if (!retry) throw e;
      skip.add(index);
    }
  }
}

/** Instance `id`'s record, or undefined. */
function readRecord(o: Resolved, id: string): LocalRecord | undefined {
  const path = join(o.stateDir, `${id}.json`);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as LocalRecord) : undefined;
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

/** The files of one local agent: its dir and what is in it, and the installed bundle it runs. */
interface AgentLayout {
  bundle: string;
  dir: string;
  certs: string;
  data: string;
  audit: string;
  /** The agent's own state (task journal, newest revocation list), outside the data dir. */
  state: string;
}

/** Makes instance `id`'s dirs, issues its certificate for `address` and writes it, owned by the agent user. */
async function layOutAgent(o: Resolved, req: CreateRequest, id: string, address: string): Promise<AgentLayout> {
  const bundle = prepareRunDir(o.runDir, o.agentBundle);
  const home = installationDir(o.runDir, o.stateDir);
  const dir = join(home, id);
  const l = { bundle, dir, certs: join(dir, 'certs'), data: join(dir, 'data'), audit: join(dir, 'audit'), state: join(dir, 'state') };
  for (const d of [dir, l.certs, l.data, l.audit, l.state]) makeDirs(d, { mode: 0o700 });
  // Its host dir in it now, the installation dir cannot go (removeEmptyInstallationDir).
  chmodSync(home, 0o711);
  const ca = FleetCa.open(o.caDir);
  const made = await ca.issue({ identity: { role: 'agent', fleet: req.fleet, host: req.label }, hosts: [address] });
  const revoked = join(o.caDir, REVOCATION_FILE);
  writeCertDir(
    l.certs,
    {
      certPem: made.certPem,
      keyPem: made.keyPem,
      caPem: ca.certPem,
      ...(existsSync(revoked) ? { revokedText: readFileSync(revoked, 'utf8') } : {}),
    },
    AGENT_FILES,
  );
  if (isRoot()) for (const d of [l.certs, l.data, l.audit, l.state]) chownTree(d);
  chmodSync(dir, 0o711);
  return l;
}

/** The Node flags and gaxx-agent flags of the agent laid out in `l`, serving on `address`. */
function agentCommandLine(o: Resolved, req: CreateRequest, l: AgentLayout, address: string): string[] {
  return [
    ...agentNodeFlags(l.bundle),
    l.bundle,
    '--listen',
    `${address}:${o.port}`,
    // As every fleet's agents do: the dashboard (the daemon's or `gaxx ui`'s) collects them.
    '--metrics-listen',
    `${address}:${o.metricsPort}`,
    '--certs',
    l.certs,
    '--data-dir',
    l.data,
    '--state-dir',
    l.state,
    '--audit-log',
    join(l.audit, 'audit.log'),
    // Every local agent runs as the same user, and a task's process limit (RLIMIT_NPROC) counts
    // that user's processes and threads across all of them: a 50-agent fleet holds ~1,200 at
    // rest (agent, launcher, warm sandboxes), over the default 1,024 a lone host's tasks get.
    '--task-limits',
    JSON.stringify({ processes: LOCAL_TASK_PROCESSES }),
    ...taskHiddenArgs(o),
    ...fleetSinceArgs(req.fleetSince),
    ...o.agentArgs,
  ];
}

/** Lays out the agent's files in slot `index` and starts it (told to `started`); resolves once it listens. */
async function launchAgent(o: Resolved, req: CreateRequest, id: string, index: number, started: (pid: number) => void): Promise<LocalRecord> {
  const address = localAddress(index);
  const l = await layOutAgent(o, req, id, address);
  const { bundle, dir } = l;
  const log = join(dir, 'agent.log');
  const fd = openSync(log, 'w', 0o600);
  const args = agentCommandLine(o, req, l, address);
  // Without the descriptors this process was started with (the agent would close them as it
  // starts; until then a pipe's write end there would be held by a process of another user).
  const child = spawnDetached(process.execPath, args, {
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
  makeDirs(o.stateDir, { mode: 0o700 });
  writeFileAtomic(join(o.stateDir, `${id}.json`), JSON.stringify(rec, null, 2), 0o600, AGENT_FILES);
  writeFileAtomic(join(o.stateDir, `${id}.pid`), `${pid}\n`, 0o600, AGENT_FILES);
  started(pid);
  const ports = await waitForListening(child, log, o.startTimeoutMs);
  if (ports.grpc !== rec.port || ports.metrics !== rec.metricsPort) {
    rec.port = ports.grpc;
    rec.metricsPort = ports.metrics;
    writeFileAtomic(join(o.stateDir, `${id}.json`), JSON.stringify(rec, null, 2), 0o600, AGENT_FILES);
  }
  return rec;
}

/** Whether the record's pid is still its agent: the bundle, with this instance's own cert dir. */
const isAgentRunning = (r: LocalRecord): boolean => isAgentProcess(r.pid, r.bundle, join(r.dir, 'certs'));

/** SIGTERM (the agent drains its tasks), SIGKILL after `timeoutMs`; only if the pid is still the agent. */
async function stopLocalAgent(r: LocalRecord, timeoutMs: number): Promise<void> {
  if (!isAgentRunning(r)) return;
  const certs = join(r.dir, 'certs');
  process.kill(r.pid, 'SIGTERM');
  if (await waitForExit(r.pid, r.bundle, timeoutMs, certs)) return;
  if (isAgentRunning(r)) process.kill(r.pid, 'SIGKILL');
  await waitForExit(r.pid, r.bundle, timeoutMs, certs);
}
