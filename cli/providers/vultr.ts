/**
 * Vultr API v2: /v2/instances create/list/get/delete, `tags` on create and the `tag` filter on
 * list, `user_data` (base64), cursor pagination through `meta.links.next`, `{error, status}`
 * errors, prices from /v2/plans. Every request is paced to Vultr's documented 30 per second and
 * retried on 429/5xx with backoff.
 */
import { z } from 'zod';
import { ApiClient } from './api-client.js';
import { Pacer, systemClock } from './pacer.js';
import { parseReply } from './reply.js';
import {
  fleetTag,
  hasFleetTag,
  type CallOptions,
  type CreateRequest,
  type DestroyOutcome,
  type Instance,
  type InstanceStatus,
  type Provider,
  type ProviderSettings,
} from './types.js';

export const VULTR_DEFAULT_URL = 'https://api.vultr.com';
/** Documented: 30 requests per second per API key. */
export const VULTR_PACE = { limit: 30, windowMs: 1_000 };
/** Debian 12 x64 is os_id 2136. */
export const VULTR_DEFAULTS = { region: 'ewr', type: 'vc2-1c-1gb', image: '2136' };
const PER_PAGE = 100;

const VultrInstance = z.object({
  id: z.string(),
  label: z.string().default(''),
  status: z.string(),
  power_status: z.string().nullish(),
  server_status: z.string().nullish(),
  main_ip: z.string().nullish(),
  v6_main_ip: z.string().nullish(),
  region: z.string().nullish(),
  plan: z.string().nullish(),
  date_created: z.string().nullish(),
  tags: z.array(z.string()).nullish(),
});
type VultrInstance = z.infer<typeof VultrInstance>;

const Meta = z.object({ total: z.number().optional(), links: z.object({ next: z.string().nullish() }).nullish() }).nullish();
const InstanceBody = z.object({ instance: VultrInstance });
const InstancesBody = z.object({ instances: z.array(VultrInstance), meta: Meta });
const PlansBody = z.object({ plans: z.array(z.object({ id: z.string(), hourly_cost: z.number().nullish(), monthly_cost: z.number().nullish() })), meta: Meta });
const ErrorBody = z.object({ error: z.string() });

/** `{error, status}` as one line. */
export function describeVultrError(body: unknown): string | undefined {
  const r = ErrorBody.safeParse(body);
  return r.success && r.data.error !== '' ? r.data.error : undefined;
}

function status(v: VultrInstance): InstanceStatus {
  if (v.status === 'pending') return 'provisioning';
  if (v.status !== 'active') return 'unknown';
  if (v.power_status === 'stopped') return 'stopped';
  return v.server_status && v.server_status !== 'ok' ? 'provisioning' : 'running';
}

/** Vultr reports 0.0.0.0 / '' until an address is assigned. */
function address(a: string | null | undefined): string | undefined {
  return a && a !== '0.0.0.0' && a !== '::' ? a : undefined;
}

function toInstance(v: VultrInstance): Instance {
  return {
    id: v.id,
    provider: 'vultr',
    label: v.label,
    tags: v.tags ?? [],
    status: status(v),
    ipv4: address(v.main_ip),
    ipv6: address(v.v6_main_ip),
    region: v.region ?? undefined,
    type: v.plan ?? undefined,
    createdAt: v.date_created ?? undefined,
  };
}

/** The Vultr provider. */
export class VultrProvider implements Provider {
  readonly name = 'vultr';
  readonly capabilities = { creates: true, destroys: true, userData: true };
  readonly api: ApiClient;
  private readonly pacer: Pacer;
  private prices: Promise<Map<string, number | undefined>> | undefined;

  constructor(private readonly settings: ProviderSettings) {
    const clock = settings.clock ?? systemClock;
    this.api = new ApiClient({
      name: 'vultr',
      baseUrl: settings.baseUrl ?? VULTR_DEFAULT_URL,
      token: settings.token,
      clock,
      describeError: describeVultrError,
    });
    this.pacer = new Pacer(VULTR_PACE, clock);
  }

  async create(req: CreateRequest, opts: CallOptions = {}): Promise<Instance> {
    const d = { ...VULTR_DEFAULTS, ...this.settings.defaults };
    const image = req.image ?? d.image;
    const body = {
      label: req.label,
      hostname: req.label,
      region: req.region ?? d.region,
      plan: req.type ?? d.type,
      // A number is an OS id; anything else a marketplace image id.
      ...(/^\d+$/.test(image) ? { os_id: Number(image) } : { image_id: image }),
      tags: [fleetTag(req.fleet), ...(req.tags ?? [])],
      ...(req.userData ? { user_data: Buffer.from(req.userData, 'utf8').toString('base64') } : {}),
    };
    const res = await this.api.request({ method: 'POST', path: '/v2/instances', body, pacers: [this.pacer], signal: opts.signal });
    return toInstance(parseReply('vultr', 'instance', InstanceBody, res.body).instance);
  }

  async list(fleet: string, opts: CallOptions = {}): Promise<Instance[]> {
    const out: Instance[] = [];
    let cursor: string | undefined;
    for (let n = 0; n < 1000; n++) {
      const res = await this.api.request({
        method: 'GET',
        path: '/v2/instances',
        query: { tag: fleetTag(fleet), per_page: PER_PAGE, cursor },
        pacers: [this.pacer],
        signal: opts.signal,
      });
      const body = parseReply('vultr', 'instance list', InstancesBody, res.body);
      out.push(...body.instances.map(toInstance));
      cursor = body.meta?.links?.next || undefined;
      if (!cursor) break;
    }
    // The server filters by tag; checked again so nothing foreign slips through.
    return out.filter((i) => hasFleetTag(i, fleet));
  }

  async get(id: string, opts: CallOptions = {}): Promise<Instance | undefined> {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) return undefined;
    const res = await this.api.request({ method: 'GET', path: `/v2/instances/${id}`, pacers: [this.pacer], signal: opts.signal }, true);
    if (res.status === 404) return undefined;
    return toInstance(parseReply('vultr', 'instance', InstanceBody, res.body).instance);
  }

  async destroy(fleet: string, id: string, opts: CallOptions = {}): Promise<DestroyOutcome> {
    const current = await this.get(id, opts);
    if (!current) return 'gone';
    if (!hasFleetTag(current, fleet)) return 'refused';
    const res = await this.api.request({ method: 'DELETE', path: `/v2/instances/${id}`, pacers: [this.pacer], signal: opts.signal }, true);
    return res.status === 404 ? 'gone' : 'deleted';
  }

  async pricePerHour(type: string, opts: CallOptions = {}): Promise<number | undefined> {
    this.prices ??= this.loadPrices(opts).catch((e: unknown) => {
      this.prices = undefined;
      throw e;
    });
    return (await this.prices).get(type);
  }

  private async loadPrices(opts: CallOptions): Promise<Map<string, number | undefined>> {
    const out = new Map<string, number | undefined>();
    let cursor: string | undefined;
    for (let n = 0; n < 100; n++) {
      const res = await this.api.request({ method: 'GET', path: '/v2/plans', query: { per_page: 500, cursor }, pacers: [this.pacer], signal: opts.signal });
      const body = parseReply('vultr', 'plan list', PlansBody, res.body);
      for (const p of body.plans) out.set(p.id, p.hourly_cost ?? undefined);
      cursor = body.meta?.links?.next || undefined;
      if (!cursor) break;
    }
    return out;
  }
}

/** Factory for the registry. */
export function createVultrProvider(settings: ProviderSettings): Provider {
  return new VultrProvider(settings);
}
