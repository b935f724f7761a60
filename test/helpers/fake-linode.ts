/**
 * A fake Linode API v4 on loopback, following the documented endpoints the linode provider uses:
 * POST/GET /v4/linode/instances (page, page_size, X-Filter on tags), GET/DELETE
 * /v4/linode/instances/{id}, GET /v4/linode/types; `{errors:[{reason, field}]}` errors; 20
 * creations per 15 s (429 + Retry-After beyond that).
 */
import { FakeCloud, type FakeAnswer, type FakeCloudOptions, type FakeInstance, type FakeRequest } from './fake-cloud.js';

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]{1,62})[A-Za-z0-9]$/;
const TYPES = [
  { id: 'g6-nanode-1', label: 'Nanode 1GB', price: { hourly: 0.0075, monthly: 5 } },
  { id: 'g6-standard-1', label: 'Linode 2GB', price: { hourly: 0.018, monthly: 12 } },
  { id: 'g6-standard-2', label: 'Linode 4GB', price: { hourly: 0.036, monthly: 24 } },
];

export type FakeLinodeOptions = Omit<FakeCloudOptions, 'rateLimit'> & { rateLimit?: FakeCloudOptions['rateLimit'] };

/** The fake; `await new FakeLinode({token}).start()`, then point the provider at `.url`. */
export class FakeLinode extends FakeCloud {
  private nextId = 1000;

  constructor(opts: FakeLinodeOptions) {
    super({ rateLimit: { limit: 20, windowMs: 15_000, scope: 'create' }, ...opts });
  }

  protected newId(): string {
    return String(this.nextId++);
  }

  protected isCreate(req: FakeRequest): boolean {
    return req.method === 'POST' && req.url.pathname === '/v4/linode/instances';
  }

  protected errorBody(_status: number, message: string, field?: string): unknown {
    return { errors: [{ reason: message, ...(field ? { field } : {}) }] };
  }

  /** The API's view of one instance. */
  view(i: FakeInstance): Record<string, unknown> {
    return {
      id: Number(i.id),
      label: i.label,
      status: i.status,
      region: i.region,
      type: i.type,
      image: i.image,
      ipv4: i.ipv4 ? [i.ipv4] : [],
      ipv6: i.ipv4 ? '2600:3c00::f03c:91ff:fe00:1/128' : null,
      tags: i.tags,
      created: i.created.slice(0, 19),
      updated: i.created.slice(0, 19),
      hypervisor: 'kvm',
      specs: { disk: 25600, memory: 1024, vcpus: 1, transfer: 1000 },
    };
  }

  protected async route(req: FakeRequest): Promise<FakeAnswer> {
    const p = req.url.pathname;
    if (p === '/v4/linode/instances' && req.method === 'POST') return this.create(req.body);
    if (p === '/v4/linode/instances' && req.method === 'GET') return this.list(req);
    if (p === '/v4/linode/types' && req.method === 'GET') return this.page(TYPES, req);
    const m = /^\/v4\/linode\/instances\/(\d+)$/.exec(p);
    if (m) {
      const inst = this.instances.get(m[1] as string);
      if (!inst) return this.error(404, 'Not found');
      if (req.method === 'GET') return { status: 200, body: this.view(inst) };
      if (req.method === 'DELETE') {
        this.deleteInstance(inst.id);
        return { status: 200, body: {} };
      }
    }
    return this.error(404, 'Not found');
  }

  private create(body: unknown): FakeAnswer {
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof b.region !== 'string') return this.error(400, 'region is required', 'region');
    if (typeof b.type !== 'string') return this.error(400, 'type is required', 'type');
    if (typeof b.label !== 'string' || !LABEL.test(b.label)) return this.error(400, 'Label must be 3-64 characters of letters, digits, -, _ or .', 'label');
    if (b.image !== undefined && typeof b.root_pass !== 'string') return this.error(400, 'root_pass is required when deploying from an image', 'root_pass');
    const tags = b.tags ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string' || t.length < 3 || t.length > 50))
      return this.error(400, 'Tags must be 3-50 characters', 'tags');
    const meta = b.metadata as { user_data?: unknown } | undefined;
    let userData: string | undefined;
    if (meta?.user_data !== undefined) {
      if (typeof meta.user_data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(meta.user_data))
        return this.error(400, 'user_data must be base64', 'metadata.user_data');
      userData = Buffer.from(meta.user_data, 'base64').toString('utf8');
    }
    if ([...this.instances.values()].some((i) => i.label === b.label)) return this.error(400, 'Label must be unique among your Linodes', 'label');
    const inst = this.createInstance({ label: b.label, tags: tags as string[], region: b.region, type: b.type, image: String(b.image ?? ''), userData });
    if (!inst) return this.error(400, 'Account limit reached: cannot create more Linodes');
    return { status: 200, body: this.view(inst) };
  }

  private list(req: FakeRequest): FakeAnswer {
    let all = [...this.instances.values()].sort((a, b) => Number(a.id) - Number(b.id));
    const filter = req.headers['x-filter'];
    if (typeof filter === 'string') {
      let f: unknown;
      try {
        f = JSON.parse(filter);
      } catch {
        return this.error(400, 'Invalid X-Filter JSON');
      }
      const tag = (f as { tags?: unknown }).tags;
      if (typeof tag === 'string') all = all.filter((i) => i.tags.includes(tag));
    }
    return this.page(
      all.map((i) => this.view(i)),
      req,
    );
  }

  private page(items: unknown[], req: FakeRequest): FakeAnswer {
    const size = Number(req.url.searchParams.get('page_size') ?? 100);
    const page = Number(req.url.searchParams.get('page') ?? 1);
    if (!(Number.isInteger(size) && size >= 25 && size <= 500)) return this.error(400, 'page_size must be 25-500', 'page_size');
    const served = this.pageSize(size);
    const pages = Math.max(1, Math.ceil(items.length / served));
    if (!(Number.isInteger(page) && page >= 1 && page <= pages)) return this.error(400, 'page out of range', 'page');
    return { status: 200, body: { data: items.slice((page - 1) * served, page * served), page, pages, results: items.length } };
  }
}
