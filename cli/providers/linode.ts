/**
 * Linode API v4: instances create/list/view/delete under /v4/linode/instances, tags, cloud-init
 * through `metadata.user_data` (base64), page/pages/results pagination, `{errors:[{reason,field}]}`
 * errors, hourly prices from /v4/linode/types. Creations are paced to Linode's documented 20 per
 * 15 s; every request is retried on 429/5xx with backoff (a creation only once a lookup by label
 * found nothing).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { ApiRequest } from './api-client.js';
import { CloudProvider, cloudInstance, errorDescriber, statusFrom } from './cloud-provider.js';
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

export const LINODE_DEFAULT_URL = 'https://api.linode.com';
/** Documented: 20 POST /linode/instances per 15 seconds. */
export const LINODE_CREATE_PACE = { limit: 20, windowMs: 15_000 };
/** Other requests: well under Linode's general limits. */
export const LINODE_GENERAL_PACE = { limit: 100, windowMs: 10_000 };
export const LINODE_DEFAULTS = { region: 'us-east', type: 'g6-nanode-1', image: 'linode/debian12' };
const PAGE_SIZE = 100;

const LinodeInstance = z.object({
  id: z.number().int(),
  label: z.string(),
  status: z.string(),
  region: z.string().nullish(),
  type: z.string().nullish(),
  ipv4: z.array(z.string()).nullish(),
  ipv6: z.string().nullish(),
  tags: z.array(z.string()).default([]),
  created: z.string().nullish(),
});
type LinodeInstance = z.infer<typeof LinodeInstance>;

const page = <T extends z.ZodTypeAny>(item: T) => z.object({ data: z.array(item), page: z.number().int(), pages: z.number().int(), results: z.number().int() });
const LinodeType = z.object({ id: z.string(), price: z.object({ hourly: z.number().nullish(), monthly: z.number().nullish() }).nullish() });
const ErrorBody = z.object({ errors: z.array(z.object({ reason: z.string(), field: z.string().optional() })) });

/** `{errors:[{reason, field}]}` as one line: "field: reason; reason". */
export const describeLinodeError = errorDescriber(ErrorBody, (b) => b.errors.map((e) => (e.field ? `${e.field}: ${e.reason}` : e.reason)).join('; '));

const STATUS: Partial<Record<InstanceStatus, readonly string[]>> = {
  running: ['running'],
  provisioning: ['provisioning', 'booting', 'rebooting', 'rebuilding', 'cloning', 'restoring', 'migrating'],
  stopped: ['offline', 'stopped', 'shutting_down'],
  deleting: ['deleting'],
};

function toInstance(l: LinodeInstance): Instance {
  // The first address Linode lists is the public one; private ones (192.168.128.0/17) follow.
  const v4 = (l.ipv4 ?? []).find((a) => !a.startsWith('192.168.')) ?? l.ipv4?.[0];
  return cloudInstance('linode', {
    id: String(l.id),
    label: l.label,
    tags: l.tags,
    status: statusFrom(l.status, STATUS),
    ipv4: v4,
    ipv6: l.ipv6?.split('/')[0],
    region: l.region,
    type: l.type,
    created: l.created,
  });
}

/** The Linode provider. */
export class LinodeProvider extends CloudProvider {
  private readonly general: Pacer;
  private readonly creates: Pacer;

  constructor(settings: ProviderSettings) {
    super(settings, { name: 'linode', defaultUrl: LINODE_DEFAULT_URL, describeError: describeLinodeError });
    this.general = new Pacer(LINODE_GENERAL_PACE, this.clock);
    this.creates = new Pacer(LINODE_CREATE_PACE, this.clock);
  }

  protected createRequest(req: CreateRequest): Omit<ApiRequest, 'signal'> {
    const d = { ...LINODE_DEFAULTS, ...this.settings.defaults };
    const body = {
      label: req.label,
      region: req.region ?? d.region,
      type: req.type ?? d.type,
      image: req.image ?? d.image,
      tags: [fleetTag(req.fleet), ...(req.tags ?? [])],
      // Linode asks for a root password with an image; a random one nobody keeps (bootstrap
      // turns password logins off, and keys are how gaxx logs in).
      root_pass: randomBytes(24).toString('base64url'),
      ...(req.sshKeys?.length ? { authorized_keys: req.sshKeys } : {}),
      ...(req.userData ? { metadata: { user_data: Buffer.from(req.userData, 'utf8').toString('base64') } } : {}),
      booted: true,
    };
    return { method: 'POST', path: '/v4/linode/instances', body, pacers: [this.creates, this.general] };
  }

  protected readCreated(body: unknown): Instance {
    return this.readInstance(body);
  }

  async list(fleet: string, opts: CallOptions = {}): Promise<Instance[]> {
    const tag = fleetTag(fleet);
    const out: Instance[] = [];
    for (let p = 1, pages = 1; p <= pages && p <= 1000; p++) {
      const res = await this.api.request({
        method: 'GET',
        path: '/v4/linode/instances',
        query: { page: p, page_size: PAGE_SIZE },
        // Linode filters server side; the result is checked again below all the same.
        headers: { 'x-filter': JSON.stringify({ tags: tag }) },
        pacers: [this.general],
        signal: opts.signal,
      });
      const body = parseReply('linode', 'instance page', page(LinodeInstance), res.body);
      pages = body.pages;
      out.push(...body.data.map(toInstance));
    }
    return out.filter((i) => hasFleetTag(i, fleet));
  }

  protected instancePath(id: string): string | undefined {
    return /^\d+$/.test(id) ? `/v4/linode/instances/${id}` : undefined;
  }

  protected readInstance(body: unknown): Instance {
    return toInstance(parseReply('linode', 'instance', LinodeInstance, body));
  }

  protected pacers(): Pacer[] {
    return [this.general];
  }

  protected async loadPrices(opts: CallOptions): Promise<Map<string, number | undefined>> {
    const out = new Map<string, number | undefined>();
    for (let p = 1, pages = 1; p <= pages && p <= 100; p++) {
      const res = await this.api.request({
        method: 'GET',
        path: '/v4/linode/types',
        query: { page: p, page_size: PAGE_SIZE },
        pacers: [this.general],
        signal: opts.signal,
      });
      const body = parseReply('linode', 'type page', page(LinodeType), res.body);
      pages = body.pages;
      for (const t of body.data) out.set(t.id, t.price?.hourly ?? undefined);
    }
    return out;
  }
}

/** Factory for the registry. */
export function createLinodeProvider(settings: ProviderSettings): Provider {
  return new LinodeProvider(settings);
}
