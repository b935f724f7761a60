/**
 * A fake Vultr API v2 on loopback, following the documented endpoints the vultr provider uses:
 * POST/GET /v2/instances (tag, per_page, cursor; meta.links.next), GET/DELETE
 * /v2/instances/{id}, GET /v2/plans; `{error, status}` errors; 30 requests per second (429 +
 * Retry-After beyond that).
 */
import { FakeCloud, uuid, type FakeAnswer, type FakeCloudOptions, type FakeInstance, type FakeRequest } from './fake-cloud.js';

const PLANS = [
  { id: 'vc2-1c-1gb', vcpu_count: 1, ram: 1024, disk: 25, bandwidth: 1024, monthly_cost: 5, hourly_cost: 0.007, type: 'vc2', locations: ['ewr'] },
  { id: 'vc2-1c-2gb', vcpu_count: 1, ram: 2048, disk: 55, bandwidth: 2048, monthly_cost: 10, hourly_cost: 0.015, type: 'vc2', locations: ['ewr'] },
];

export type FakeVultrOptions = Omit<FakeCloudOptions, 'rateLimit'> & { rateLimit?: FakeCloudOptions['rateLimit'] };

/** The fake; `await new FakeVultr({token}).start()`, then point the provider at `.url`. */
export class FakeVultr extends FakeCloud {
  constructor(opts: FakeVultrOptions) {
    super({ rateLimit: { limit: 30, windowMs: 1_000, scope: 'all' }, ...opts });
  }

  protected newId(): string {
    return uuid();
  }

  protected isCreate(req: FakeRequest): boolean {
    return req.method === 'POST' && req.url.pathname === '/v2/instances';
  }

  protected errorBody(status: number, message: string): unknown {
    return { error: message, status };
  }

  /** The API's view of one instance. */
  view(i: FakeInstance): Record<string, unknown> {
    return {
      id: i.id,
      os: 'Debian 12 x64 (bookworm)',
      ram: 1024,
      disk: 25,
      plan: i.type,
      main_ip: i.ipv4 ?? '0.0.0.0',
      vcpu_count: 1,
      region: i.region,
      date_created: i.created,
      status: i.status === 'running' ? 'active' : 'pending',
      power_status: i.status === 'running' ? 'running' : 'stopped',
      server_status: i.status === 'running' ? 'ok' : 'none',
      v6_main_ip: '',
      label: i.label,
      hostname: i.label,
      tags: i.tags,
      os_id: Number(i.image) || 0,
    };
  }

  protected async route(req: FakeRequest): Promise<FakeAnswer> {
    const p = req.url.pathname;
    if (p === '/v2/instances' && req.method === 'POST') return this.create(req.body);
    if (p === '/v2/instances' && req.method === 'GET') {
      const tag = req.url.searchParams.get('tag');
      const all = [...this.instances.values()].filter((i) => tag === null || i.tags.includes(tag));
      return this.page(
        'instances',
        all.map((i) => this.view(i)),
        req,
      );
    }
    if (p === '/v2/plans' && req.method === 'GET') return this.page('plans', PLANS, req);
    const m = /^\/v2\/instances\/([A-Za-z0-9-]+)$/.exec(p);
    if (m) {
      const inst = this.instances.get(m[1] as string);
      if (!inst) return this.error(404, 'Invalid instance-id.');
      if (req.method === 'GET') return { status: 200, body: { instance: this.view(inst) } };
      if (req.method === 'DELETE') {
        this.deleteInstance(inst.id);
        return { status: 204 };
      }
    }
    return this.error(404, 'Not found');
  }

  private create(body: unknown): FakeAnswer {
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof b.region !== 'string') return this.error(400, 'Invalid region.');
    if (typeof b.plan !== 'string') return this.error(400, 'Invalid plan.');
    if (b.os_id === undefined && b.image_id === undefined && b.snapshot_id === undefined) return this.error(400, 'Missing os_id, image_id or snapshot_id.');
    const tags = b.tags ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) return this.error(400, 'Invalid tags.');
    let userData: string | undefined;
    if (b.user_data !== undefined) {
      if (typeof b.user_data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(b.user_data)) return this.error(400, 'user_data must be base64 encoded.');
      userData = Buffer.from(b.user_data, 'base64').toString('utf8');
    }
    const label = typeof b.label === 'string' ? b.label : '';
    const inst = this.createInstance({ label, tags: tags as string[], region: b.region, type: b.plan, image: String(b.os_id ?? b.image_id ?? ''), userData });
    if (!inst) return this.error(400, 'Server add failed: account instance limit reached.');
    return { status: 202, body: { instance: { ...this.view(inst), default_password: 'not-a-real-password' } } };
  }

  /** Cursor pagination: the cursor is the opaque base64 of the next offset. */
  private page(key: string, items: unknown[], req: FakeRequest): FakeAnswer {
    const per = Number(req.url.searchParams.get('per_page') ?? 100);
    if (!(Number.isInteger(per) && per >= 1 && per <= 500)) return this.error(400, 'per_page must be 1-500');
    const cursor = req.url.searchParams.get('cursor');
    const offset = cursor
      ? Number(
          Buffer.from(cursor, 'base64url')
            .toString('utf8')
            .replace(/^next__/, ''),
        )
      : 0;
    if (!Number.isInteger(offset) || offset < 0) return this.error(400, 'Invalid cursor.');
    const served = this.pageSize(per);
    const next = offset + served < items.length ? Buffer.from(`next__${offset + served}`).toString('base64url') : '';
    const prev = offset > 0 ? Buffer.from(`prev__${Math.max(0, offset - served)}`).toString('base64url') : '';
    return { status: 200, body: { [key]: items.slice(offset, offset + served), meta: { total: items.length, links: { next, prev } } } };
  }
}
