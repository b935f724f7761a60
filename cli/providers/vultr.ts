/**
 * Vultr API v2: /v2/instances create/list/get/delete, `tags` on create and the `tag` filter on
 * list, `user_data` (base64), cursor pagination through `meta.links.next`, `{error, status}`
 * errors, prices from /v2/plans. Every request is paced to Vultr's documented 30 per second and
 * retried on 429/5xx with backoff (a creation only once a lookup by label found nothing).
 */
import { z } from 'zod';
import type { ApiRequest } from './api-client.js';
import { CloudProvider, cloudInstance, errorDescriber } from './cloud-provider.js';
import { Pacer } from './pacer.js';
import { parseReply } from './reply.js';
import {
  fleetTag,
  hasFleetTag,
  type CallOptions,
  type CreateRequest,
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
export const describeVultrError = errorDescriber(ErrorBody, (b) => b.error);

function status(v: VultrInstance): InstanceStatus {
  if (v.status === 'pending') return 'provisioning';
  if (v.status !== 'active') return 'unknown';
  if (v.power_status === 'stopped') return 'stopped';
  return v.server_status && v.server_status !== 'ok' ? 'provisioning' : 'running';
}

function toInstance(v: VultrInstance): Instance {
  return cloudInstance('vultr', {
    id: v.id,
    label: v.label,
    tags: v.tags,
    status: status(v),
    ipv4: v.main_ip,
    ipv6: v.v6_main_ip,
    region: v.region,
    type: v.plan,
    created: v.date_created,
  });
}

/** The Vultr provider. */
export class VultrProvider extends CloudProvider {
  private readonly pacer: Pacer;

  constructor(settings: ProviderSettings) {
    super(settings, { name: 'vultr', defaultUrl: VULTR_DEFAULT_URL, describeError: describeVultrError });
    this.pacer = new Pacer(VULTR_PACE, this.clock);
  }

  protected createRequest(req: CreateRequest): Omit<ApiRequest, 'signal'> {
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
    return { method: 'POST', path: '/v2/instances', body, pacers: [this.pacer] };
  }

  protected readCreated(body: unknown): Instance {
    return this.readInstance(body);
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

  protected instancePath(id: string): string | undefined {
    return /^[A-Za-z0-9-]{1,64}$/.test(id) ? `/v2/instances/${id}` : undefined;
  }

  protected readInstance(body: unknown): Instance {
    return toInstance(parseReply('vultr', 'instance', InstanceBody, body).instance);
  }

  protected pacers(): Pacer[] {
    return [this.pacer];
  }

  protected async loadPrices(opts: CallOptions): Promise<Map<string, number | undefined>> {
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
