/**
 * What the cloud providers (linode.ts, vultr.ts) have in common, so each of them holds only what
 * its API does differently (endpoints, body shapes, pagination): turning an API instance into
 * our Instance record, reading the provider's error body, and the calls whose logic is the same
 * on every API: create without ever making two instances for one request, get by id (404:
 * none), destroy after re-checking the fleet tag, and hourly prices loaded once per process.
 */
import { isIP } from 'node:net';
import type { z } from 'zod';
import { ApiClient, type ApiRequest } from './api-client.js';
import { systemClock, type Pacer } from './pacer.js';
import type { CallOptions, Clock, CreateRequest, DestroyOutcome, Instance, InstanceStatus, Provider, ProviderSettings } from './types.js';
import { hasFleetTag } from './types.js';

/** The fields every cloud API reports for an instance, as it reports them (null where it has none). */
export interface CloudInstanceFields {
  id: string;
  label: string;
  tags: string[] | null | undefined;
  status: InstanceStatus;
  ipv4: string | null | undefined;
  ipv6: string | null | undefined;
  region: string | null | undefined;
  type: string | null | undefined;
  created: string | null | undefined;
}

/** Addresses APIs report before one is assigned (Vultr: 0.0.0.0 and ::); an empty one is no IP address. */
const PLACEHOLDER_ADDRESSES = new Set(['0.0.0.0', '::']);

/**
 * An address of `family` as the API reports it, or undefined: none yet (a placeholder), or a
 * value that is no such address. What the API says lands in the fleet's state, known_hosts lines,
 * agent addresses and `ssh`'s argv (`gaxx ssh`): a reply such as `-oProxyCommand=CMD` or one with
 * a newline is never taken for an address.
 */
function address(a: string | null | undefined, family: 4 | 6): string | undefined {
  return a && !PLACEHOLDER_ADDRESSES.has(a) && isIP(a) === family ? a : undefined;
}

/** Our record of a cloud instance: absent, null and placeholder values become undefined. */
export function cloudInstance(provider: string, f: CloudInstanceFields): Instance {
  return {
    id: f.id,
    provider,
    label: f.label,
    tags: f.tags ?? [],
    status: f.status,
    ipv4: address(f.ipv4, 4),
    ipv6: address(f.ipv6, 6),
    region: f.region ?? undefined,
    type: f.type ?? undefined,
    createdAt: f.created ?? undefined,
  };
}

/** A provider's status word as ours, from the words each of ours covers; 'unknown' for any other. */
export function statusFrom(word: string, table: Partial<Record<InstanceStatus, readonly string[]>>): InstanceStatus {
  const hit = (Object.entries(table) as [InstanceStatus, readonly string[]][]).find(([, words]) => words.includes(word));
  return hit ? hit[0] : 'unknown';
}

/** A reader of the provider's own error text: `format` of the body when it fits `schema`. */
export function errorDescriber<S extends z.ZodTypeAny>(schema: S, format: (body: z.output<S>) => string): (body: unknown) => string | undefined {
  return (body) => {
    const r = schema.safeParse(body);
    if (!r.success) return undefined;
    return format(r.data as z.output<S>) || undefined;
  };
}

/** How a cloud provider names itself and reaches its API. */
export interface CloudApi {
  name: string;
  defaultUrl: string;
  describeError: (body: unknown) => string | undefined;
}

/** A cloud provider: each API supplies its endpoints and shapes, the rest is here. */
export abstract class CloudProvider implements Provider {
  readonly name: string;
  readonly capabilities = { creates: true, destroys: true, userData: true };
  readonly api: ApiClient;
  protected readonly clock: Clock;
  private prices: Promise<Map<string, number | undefined>> | undefined;

  constructor(
    protected readonly settings: ProviderSettings,
    cloud: CloudApi,
  ) {
    this.name = cloud.name;
    this.clock = settings.clock ?? systemClock;
    this.api = new ApiClient({
      name: cloud.name,
      baseUrl: settings.baseUrl ?? cloud.defaultUrl,
      token: settings.token,
      clock: this.clock,
      describeError: cloud.describeError,
    });
  }

  abstract list(fleet: string, opts?: CallOptions): Promise<Instance[]>;
  /** The creation request for `req` (built once: a retry sends the same body). */
  protected abstract createRequest(req: CreateRequest): Omit<ApiRequest, 'signal'>;
  /** The instance in a create answer's body. */
  protected abstract readCreated(body: unknown): Instance;
  /** The API path of one instance, or undefined when `id` cannot be one of this API's ids. */
  protected abstract instancePath(id: string): string | undefined;
  /** The instance in a GET answer's body. */
  protected abstract readInstance(body: unknown): Instance;
  /** Pacers for requests other than creations. */
  protected abstract pacers(): Pacer[];
  /** Every plan's hourly price (all pages). */
  protected abstract loadPrices(opts: CallOptions): Promise<Map<string, number | undefined>>;

  /**
   * Creates one instance. A creation is not idempotent: when an attempt's answer is lost (5xx,
   * reset, timeout), the fleet's tagged instances are looked through for one with the label
   * before it is asked again, so a lost answer never makes a second, billed instance (Vultr) or
   * a refusal of the label as taken (Linode).
   */
  async create(req: CreateRequest, opts: CallOptions = {}): Promise<Instance> {
    return this.api.requestOnce(
      { ...this.createRequest(req), signal: opts.signal },
      (res) => this.readCreated(res.body),
      async () => (await this.list(req.fleet, opts)).find((i) => i.label === req.label),
    );
  }

  async get(id: string, opts: CallOptions = {}): Promise<Instance | undefined> {
    const path = this.instancePath(id);
    if (!path) return undefined;
    const res = await this.api.request({ method: 'GET', path, pacers: this.pacers(), signal: opts.signal }, true);
    return res.status === 404 ? undefined : this.readInstance(res.body);
  }

  async destroy(fleet: string, id: string, opts: CallOptions = {}): Promise<DestroyOutcome> {
    const current = await this.get(id, opts);
    if (!current) return 'gone';
    // Checked right before the delete: an instance that is not the fleet's is never touched.
    if (!hasFleetTag(current, fleet)) return 'refused';
    const res = await this.api.request({ method: 'DELETE', path: this.instancePath(id) as string, pacers: this.pacers(), signal: opts.signal }, true);
    return res.status === 404 ? 'gone' : 'deleted';
  }

  async pricePerHour(type: string, opts: CallOptions = {}): Promise<number | undefined> {
    // One price list per process; a failed load is not cached, so the next call tries again.
    this.prices ??= this.loadPrices(opts).catch((e: unknown) => {
      this.prices = undefined;
      throw e;
    });
    return (await this.prices).get(type);
  }
}
