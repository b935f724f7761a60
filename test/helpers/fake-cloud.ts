/**
 * The common core of the fake cloud APIs (fake-linode.ts, fake-vultr.ts): an HTTP server on
 * 127.0.0.1:0, bearer auth (401 on a bad token), a sliding-window rate limit answered with 429
 * and Retry-After on an injectable clock, fault injection, and an instance store whose machines
 * come from a pluggable backend (default: a loopback address, nothing started).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback } from './loopback-http.js';
import type { Clock } from '../../cli/providers/types.js';
import { systemClock } from '../../cli/providers/pacer.js';

/** What stands behind a fake instance: real test hosts, or nothing. */
export interface InstanceBackend {
  onCreate(i: { id: string; label: string; userData: string | undefined; tags: string[] }): Promise<{ ipv4: string }>;
  onDelete(id: string): Promise<void>;
}

/** Default backend: every instance answers on 127.0.0.1 and nothing runs. */
export const loopbackBackend: InstanceBackend = {
  onCreate: () => Promise.resolve({ ipv4: '127.0.0.1' }),
  onDelete: () => Promise.resolve(),
};

/** One instance held by a fake. */
export interface FakeInstance {
  id: string;
  label: string;
  tags: string[];
  region: string;
  type: string;
  image: string;
  /** The decoded user data the client sent. */
  userData: string | undefined;
  status: 'provisioning' | 'running';
  ipv4: string | undefined;
  created: string;
}

/** Faults to inject; counters count down per request answered with the fault. */
export interface Faults {
  /** Answer the next N requests with 429 (Retry-After: 1). */
  storm429: number;
  /** Answer the next N requests with 500. */
  fail500: number;
  /** Answer the next N requests with 200 and a body that is not JSON. */
  malformedJson: number;
  /** New instances never get an address and stay provisioning. */
  neverReady: boolean;
  /** Creation requests after this many accepted ones fail with 400. */
  createLimit: number;
}

export interface FakeCloudOptions {
  token: string;
  clock?: Clock;
  backend?: InstanceBackend;
  /** Which requests the rate limit counts, and how many per window. */
  rateLimit: { limit: number; windowMs: number; scope: 'create' | 'all' };
  /** Largest page a list answers, whatever the client asked (so a few instances span pages). */
  pageLimit?: number;
}

/** A request as the fake saw it (for assertions). */
export interface SeenRequest {
  method: string;
  path: string;
  /** The query string, with its `?` (empty without one). */
  query: string;
  status: number;
  at: number;
}

/** Parsed request handed to a provider's routes. */
export interface FakeRequest {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  body: unknown;
}

export interface FakeAnswer {
  status: number;
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
}

/** The shared server; a provider fake supplies routes and its error body shape. */
export abstract class FakeCloud {
  readonly instances = new Map<string, FakeInstance>();
  readonly requests: SeenRequest[] = [];
  readonly faults: Faults = { storm429: 0, fail500: 0, malformedJson: 0, neverReady: false, createLimit: Infinity };
  readonly clock: Clock;
  url = '';
  private server: Server | undefined;
  private readonly counted: number[] = [];
  private readonly pending = new Set<Promise<unknown>>();
  private accepted = 0;

  constructor(protected readonly opts: FakeCloudOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  /** Routes one authenticated, rate-checked request. */
  protected abstract route(req: FakeRequest): Promise<FakeAnswer>;
  /** The provider's error body. */
  protected abstract errorBody(status: number, message: string, field?: string): unknown;
  /** Whether this request is an instance creation (for a 'create'-scoped limit). */
  protected abstract isCreate(req: FakeRequest): boolean;

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.url = await listenLoopback(this.server);
    return this;
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    await closeServer(this.server);
  }

  /** Puts an instance in the store directly (e.g. a foreign or untagged one). */
  seed(i: Partial<FakeInstance> & { label: string; tags: string[] }): FakeInstance {
    const inst: FakeInstance = {
      id: this.newId(),
      region: 'r1',
      type: 't1',
      image: 'img',
      userData: undefined,
      status: 'running',
      ipv4: '127.0.0.9',
      created: new Date().toISOString(),
      ...i,
    };
    this.instances.set(inst.id, inst);
    return inst;
  }

  /** Instances carrying `tag`. */
  tagged(tag: string): FakeInstance[] {
    return [...this.instances.values()].filter((i) => i.tags.includes(tag));
  }

  /** Resolves when every backend call started so far has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  protected abstract newId(): string;

  /** Stores a new instance and asks the backend for a machine (unless neverReady). */
  protected createInstance(fields: Omit<FakeInstance, 'id' | 'status' | 'ipv4' | 'created'>): FakeInstance | undefined {
    if (this.accepted >= this.faults.createLimit) return undefined;
    this.accepted++;
    const inst: FakeInstance = { ...fields, id: this.newId(), status: 'provisioning', ipv4: undefined, created: new Date().toISOString() };
    this.instances.set(inst.id, inst);
    if (!this.faults.neverReady) {
      const p = (this.opts.backend ?? loopbackBackend)
        .onCreate({ id: inst.id, label: inst.label, userData: inst.userData, tags: inst.tags })
        .then(({ ipv4 }) => {
          if (this.instances.get(inst.id) !== inst) return;
          inst.ipv4 = ipv4;
          inst.status = 'running';
        })
        .catch(() => undefined)
        .finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
    return inst;
  }

  protected deleteInstance(id: string): boolean {
    if (!this.instances.delete(id)) return false;
    const p = (this.opts.backend ?? loopbackBackend)
      .onDelete(id)
      .catch(() => undefined)
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
    return true;
  }

  /** The page size to serve for a requested one (capped by pageLimit). */
  protected pageSize(requested: number): number {
    return Math.min(requested, this.opts.pageLimit ?? Infinity);
  }

  protected error(status: number, message: string, field?: string): FakeAnswer {
    return { status, body: this.errorBody(status, message, field) };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let answer: FakeAnswer;
    try {
      answer = await this.answer(req, url, Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
      answer = this.error(500, `fake failure: ${(e as Error).message}`);
    }
    this.requests.push({ method: req.method ?? '', path: url.pathname, query: url.search, status: answer.status, at: this.clock.now() });
    res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
    res.end(answer.raw ?? (answer.body === undefined ? '' : JSON.stringify(answer.body)));
  }

  private async answer(req: IncomingMessage, url: URL, text: string): Promise<FakeAnswer> {
    if (req.headers.authorization !== `Bearer ${this.opts.token}`) return this.error(401, 'Invalid Token');
    if (this.faults.storm429 > 0) {
      this.faults.storm429--;
      return { ...this.error(429, 'Too Many Requests'), headers: { 'retry-after': '1' } };
    }
    if (this.faults.fail500 > 0) {
      this.faults.fail500--;
      return this.error(500, 'Internal Server Error');
    }
    if (this.faults.malformedJson > 0) {
      this.faults.malformedJson--;
      return { status: 200, raw: '{"data": [ {"id": 1, ' };
    }
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      return this.error(400, 'request body is not valid JSON');
    }
    const fr: FakeRequest = { method: req.method ?? 'GET', url, headers: req.headers, body };
    const limited = this.rateLimited(fr);
    if (limited) return limited;
    return this.route(fr);
  }

  /** Sliding window over the counted requests: 429 with the seconds until one leaves it. */
  private rateLimited(req: FakeRequest): FakeAnswer | undefined {
    const { limit, windowMs, scope } = this.opts.rateLimit;
    if (scope === 'create' && !this.isCreate(req)) return undefined;
    const now = this.clock.now();
    while (this.counted.length > 0 && (this.counted[0] as number) <= now - windowMs) this.counted.shift();
    if (this.counted.length >= limit) {
      const wait = (this.counted[0] as number) + windowMs - now;
      return { ...this.error(429, 'Too Many Requests'), headers: { 'retry-after': String(Math.max(1, Math.ceil(wait / 1000))) } };
    }
    this.counted.push(now);
    return undefined;
  }
}

/** A fresh opaque id for Vultr-like fakes. */
export function uuid(): string {
  return randomUUID();
}
