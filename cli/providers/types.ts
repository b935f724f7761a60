/**
 * The one provider interface every fleet backend implements: cloud APIs (linode, vultr), hosts
 * the user already has (ssh inventory) and agents on this machine (local). Commands (spawn, ls,
 * delete) speak only this interface; they never know which backend they hold.
 *
 * A backend without a create/destroy API fits by degrading: an inventory's create() returns
 * the known hosts (tagged by gaxx's own state), its destroy() only forgets them; local's create()
 * starts processes and destroy() stops them. `capabilities` tells callers which case they have.
 */

/** The tag gaxx puts on every instance of fleet F: `gaxx-fleet:F`. Delete acts only on these. */
export function fleetTag(fleet: string): string {
  return `gaxx-fleet:${fleet}`;
}

/** Whether an instance carries fleet F's tag (the one check list and destroy rely on). */
export function hasFleetTag(instance: Pick<Instance, 'tags'>, fleet: string): boolean {
  return instance.tags.includes(fleetTag(fleet));
}

/** Where an instance is in its life, normalized across providers. */
export type InstanceStatus = 'provisioning' | 'running' | 'stopped' | 'deleting' | 'unknown';

/** One machine of a fleet as the provider reports it. */
export interface Instance {
  /** The provider's id (opaque string; Linode ids are numbers, Vultr's are UUIDs). */
  id: string;
  /** Provider name, e.g. 'linode'. */
  provider: string;
  /** The instance's label/hostname, e.g. `gaxx-web-3`. */
  label: string;
  /** Every tag the provider reports (gaxx's fleet tag among them for gaxx instances). */
  tags: string[];
  status: InstanceStatus;
  /** Public IPv4 once assigned; undefined while the provider has none yet. */
  ipv4: string | undefined;
  /** Public IPv6 (without prefix length) when the provider reports one. */
  ipv6?: string | undefined;
  region: string | undefined;
  /** Plan/type id, e.g. 'g6-nanode-1' or 'vc2-1c-1gb'. */
  type: string | undefined;
  /** ISO-8601 creation time when known. */
  createdAt: string | undefined;
  /** Hourly price in USD when the API gives it (undefined otherwise; never guessed). */
  pricePerHour?: number | undefined;
  /** SSH port and user for bootstrap when they differ from 22/root (inventory hosts). */
  ssh?: { port: number; user: string; keyPath?: string | undefined } | undefined;
  /** Where the agent serves its metrics (host:port), when the provider starts it itself and not on host:9091 (local). */
  metrics?: string | undefined;
}

/** One instance to create. */
export interface CreateRequest {
  /** The fleet the instance belongs to (its tag is added by the provider, always). */
  fleet: string;
  /** Label/hostname to give the instance. */
  label: string;
  region?: string | undefined;
  type?: string | undefined;
  image?: string | undefined;
  /** cloud-init user data as text (the provider encodes it as its API asks). */
  userData?: string | undefined;
  /** Extra tags beyond the fleet tag. */
  tags?: string[] | undefined;
  /**
   * 0-based position of this instance in the fleet. Inventory providers map it to their N-th
   * host; cloud providers ignore it, and the local provider picks its own free loopback address.
   */
  index?: number | undefined;
  /** Public SSH keys to authorize for root where the API supports it. */
  sshKeys?: string[] | undefined;
  /**
   * When the fleet was created (Unix ms, fleetSinceOf): a provider that starts the agent itself
   * (local) passes it as `--fleet-since`. Others ignore it (bootstrap passes it over SSH).
   */
  fleetSince?: number | undefined;
}

/** What a provider can actually do. */
export interface ProviderCapabilities {
  /** create() rents a new machine (false: it returns hosts that already exist). */
  creates: boolean;
  /** destroy() removes the machine (false: it only stops or forgets it). */
  destroys: boolean;
  /** Instances carry user data (cloud-init) applied on first boot. */
  userData: boolean;
  /** Most instances create() can give (an inventory's host count); undefined: no fixed bound. */
  maxInstances?: number | undefined;
  /**
   * create() leaves a running, certified agent behind (local agents): spawn does no SSH
   * bootstrap and only waits for its Health. Absent/false: hosts are bootstrapped over SSH.
   */
  startsAgent?: boolean | undefined;
}

/** Options every call accepts. */
export interface CallOptions {
  /** Aborts waiting (pacing, backoff, an in-flight request). */
  signal?: AbortSignal | undefined;
}

/** A fleet backend. Implementations throw GaxxError for every expected failure. */
export interface Provider {
  /** 'linode' | 'vultr' | 'ssh' | 'local' | ... */
  readonly name: string;
  readonly capabilities: ProviderCapabilities;
  /**
   * Creates one instance tagged with `fleetTag(req.fleet)`. Resolves as soon as the provider
   * accepted it (the instance may still be provisioning; poll get() for an address).
   */
  create(req: CreateRequest, opts?: CallOptions): Promise<Instance>;
  /** Every instance carrying fleet F's tag (all pages); never an untagged or foreign one. */
  list(fleet: string, opts?: CallOptions): Promise<Instance[]>;
  /** One instance by id, or undefined when the provider has none with that id. */
  get(id: string, opts?: CallOptions): Promise<Instance | undefined>;
  /**
   * Destroys instance `id` only if it carries fleet F's tag (re-checked right before the
   * delete). Resolves 'deleted', 'gone' (already absent) or 'refused' (not fleet F's).
   */
  destroy(fleet: string, id: string, opts?: CallOptions): Promise<DestroyOutcome>;
  /** Hourly USD price of a plan/type when the API gives it; undefined otherwise. */
  pricePerHour(type: string, opts?: CallOptions): Promise<number | undefined>;
}

export type DestroyOutcome = 'deleted' | 'gone' | 'refused';

/** Time source for pacing and backoff; a bench or test passes a scaled or manual one. */
export interface Clock {
  /** Milliseconds, monotonic enough for pacing. */
  now(): number;
  /** Resolves after `ms` (as this clock counts them); rejects with the signal's reason on abort. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Settings handed to a provider factory (resolved by the CLI config; nothing here reads env). */
export interface ProviderSettings {
  /** API token (from secrets.env or the environment); undefined for providers that need none. */
  token?: string | undefined;
  /** API base URL (e.g. for a test server); undefined: the provider's public endpoint. */
  baseUrl?: string | undefined;
  /** Defaults for create when the command gives none. */
  defaults?: { region?: string; type?: string; image?: string } | undefined;
  /** Provider-specific extras (an inventory file path, a local agent count...). */
  options?: Record<string, unknown> | undefined;
  /** Clock and timer for pacing and backoff; tests and benches scale time with them. */
  clock?: Clock | undefined;
}

/** Builds a provider from its settings. */
export type ProviderFactory = (settings: ProviderSettings) => Provider;

/**
 * Which fleet holds an inventory host across processes (two spawns of different fleets from one
 * inventory at once): `take` makes the host `fleet`'s, or names the fleet that has it.
 */
export interface InventoryClaims {
  take(id: string, fleet: string): string | undefined;
  release(id: string, fleet: string): void;
}
