/**
 * Fleet state: one JSON file per fleet under `<state>/fleets/<fleet>.json`, mode 0600, written
 * atomically (temp file, fsync, rename, fsync of the directory) so a crash at any point leaves
 * either the old or the new file. Spawn records each host's intent before asking the provider,
 * so an interrupted spawn can be resumed (`--fill`) or deleted: a host in 'intent' may or may
 * not exist at the provider, and both spawn and delete look it up by the fleet's tag.
 */
import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../certs/index.js';
import { GaxxError } from '../proto/index.js';

/** A fleet name: also part of tags (`gaxx-fleet:F`, at most 50 characters) and labels. */
export const FLEET_NAME = /^[a-z0-9][a-z0-9-]{0,38}$/;

/** INVALID_ARGUMENT unless `fleet` is a valid fleet name. */
export function assertFleetName(fleet: string): void {
  if (!FLEET_NAME.test(fleet))
    throw new GaxxError('INVALID_ARGUMENT', `fleet '${fleet}' must be 1-39 characters of [a-z0-9-], starting with a letter or digit`);
}

const HostSchema = z.object({
  /** Label and host name: `gaxx-<fleet>-<index>`. */
  name: z.string(),
  index: z.number().int().min(0),
  /** intent: create about to be asked (may exist); created: the provider accepted it; ready: bootstrapped. */
  status: z.enum(['intent', 'created', 'ready', 'failed']),
  id: z.string().optional(),
  ipv4: z.string().optional(),
  region: z.string().optional(),
  type: z.string().optional(),
  pricePerHour: z.number().optional(),
  /** The SSH host key gaxx generated and pinned through cloud-init (public half only, `ssh-ed25519 AAAA...`). */
  hostKey: z.string().optional(),
  /** SSH port, user and key file when they differ from 22/root and gaxx's key (inventory hosts). */
  ssh: z.object({ port: z.number().int(), user: z.string(), keyPath: z.string().optional() }).optional(),
  /** The agent's gRPC address (host:port) once it answered Health. */
  agent: z.string().optional(),
  /** Where the agent serves its metrics (host:port), when not on host:9091 (Instance.metrics: a local agent's). */
  metrics: z.string().optional(),
  createdAt: z.string(),
  error: z.string().optional(),
});
export type HostRecord = z.infer<typeof HostSchema>;

const FleetSchema = z.object({
  version: z.literal(1),
  fleet: z.string(),
  provider: z.string(),
  /** Hosts asked for (the target of --fill). */
  count: z.number().int().min(0),
  minCount: z.number().int().min(0),
  /** Create settings; `inventory`: the ssh provider's inventory file (absolute path). */
  settings: z.object({ region: z.string().optional(), type: z.string().optional(), image: z.string().optional(), inventory: z.string().optional() }),
  createdAt: z.string(),
  updatedAt: z.string(),
  /**
   * The fleet's TTL and budget as `gaxx spawn --ttl/--budget` set them (the scheduler daemon
   * enforces its copy in Redis; this one lets `gaxx ls` show them without Redis).
   */
  limits: z
    .object({
      /** When the fleet must be gone (ms epoch). */
      expiresAt: z.number().int().positive().optional(),
      budget: z.number().positive().optional(),
      currency: z.string(),
      /** Start of billing (ms epoch). */
      since: z.number().int().positive(),
    })
    .optional(),
  hosts: z.array(HostSchema),
});
export type FleetState = z.infer<typeof FleetSchema>;

/** The state file of `fleet`. */
export function fleetFile(fleetsDir: string, fleet: string): string {
  assertFleetName(fleet);
  return join(fleetsDir, `${fleet}.json`);
}

/** Reads a fleet's state; undefined when there is none; CONFIG_INVALID with dot-paths when damaged. */
export function readFleet(fleetsDir: string, fleet: string): FleetState | undefined {
  const path = fleetFile(fleetsDir, fleet);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new GaxxError('FAILED_PRECONDITION', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new GaxxError('CONFIG_INVALID', `${path}: not valid JSON`, { cause: e });
  }
  const r = FleetSchema.safeParse(json);
  if (!r.success) {
    const issues = r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new GaxxError('CONFIG_INVALID', `${path}: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`, { details: { issues } });
  }
  return r.data;
}

/** Every fleet with a state file, sorted by name. */
export function listFleets(fleetsDir: string): FleetState[] {
  let names: string[];
  try {
    names = readdirSync(fleetsDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return names
    .filter((n) => n.endsWith('.json') && FLEET_NAME.test(n.slice(0, -5)))
    .sort()
    .map((n) => readFleet(fleetsDir, n.slice(0, -5)))
    .filter((f): f is FleetState => f !== undefined);
}

/** Removes a fleet's state file (no error when it is already gone). */
export function removeFleet(fleetsDir: string, fleet: string): void {
  try {
    unlinkSync(fleetFile(fleetsDir, fleet));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/**
 * One fleet's state held by one command: every change is written through at once, and changes
 * from parallel host work are applied one at a time (no lost update).
 */
export class FleetStore {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly fleetsDir: string,
    public state: FleetState,
  ) {}

  /** A new fleet's state (not yet written). */
  static create(fleetsDir: string, init: Omit<FleetState, 'version' | 'createdAt' | 'updatedAt' | 'hosts'>, now = new Date()): FleetStore {
    return new FleetStore(fleetsDir, { version: 1, ...init, createdAt: now.toISOString(), updatedAt: now.toISOString(), hosts: [] });
  }

  /** Applies `change` and writes the file durably before resolving. */
  update(change: (s: FleetState) => void): Promise<void> {
    const next = this.chain.then(() => {
      change(this.state);
      this.state.updatedAt = new Date().toISOString();
      this.state.hosts.sort((a, b) => a.index - b.index);
      writeFileAtomic(fleetFile(this.fleetsDir, this.state.fleet), `${JSON.stringify(this.state, null, 2)}\n`, 0o600);
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Inserts or changes the host with `index`. */
  setHost(index: number, fields: Partial<HostRecord> & Pick<HostRecord, 'status'>): Promise<void> {
    return this.update((s) => {
      const h = s.hosts.find((x) => x.index === index);
      if (h) Object.assign(h, fields);
      else s.hosts.push({ name: hostName(s.fleet, index), index, createdAt: new Date().toISOString(), ...fields });
    });
  }

  /** Drops the host with `index`. */
  dropHost(index: number): Promise<void> {
    return this.update((s) => {
      s.hosts = s.hosts.filter((h) => h.index !== index);
    });
  }
}

/**
 * When the fleet was created, in Unix ms: what its agents get as `--fleet-since`, so that they
 * refuse work signed before it (an earlier fleet's of the same name). A --fill keeps it; a fleet
 * deleted and spawned again has a new state, and so a new time.
 */
export function fleetSinceOf(state: Pick<FleetState, 'fleet' | 'createdAt'>): number {
  const ms = Date.parse(state.createdAt);
  if (!Number.isFinite(ms)) throw new GaxxError('CONFIG_INVALID', `fleet ${state.fleet}: its createdAt '${state.createdAt}' is not a time`);
  return ms;
}

/** The label/host name of host `index` of `fleet`. */
export function hostName(fleet: string, index: number): string {
  return `gaxx-${fleet}-${index}`;
}

/** The fleet's price per hour: the sum over the hosts that may exist (asked for, created, ready). */
export function fleetPricePerHour(state: FleetState): number {
  return state.hosts.filter((h) => h.status !== 'failed').reduce((sum, h) => sum + (h.pricePerHour ?? 0), 0);
}
