/**
 * A fault-injecting HTTP proxy on loopback in front of a fake cloud API (fake-linode.ts,
 * fake-vultr.ts): every request goes through `rule`, which can pass it, forward it and lose the
 * answer (so the provider acted but the client cannot know), reset or hang after forwarding,
 * answer without forwarding, or hold it until the test says so. The client under test is pointed
 * at `url` instead of the fake's.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback } from './loopback-http.js';

/** A request as the proxy received it. */
export interface ProxiedRequest {
  method: string;
  path: string;
  /** The query string, with its `?` (empty without one). */
  query: string;
  body: string;
}

/** What the proxy does with one request. */
export type FaultAction =
  | { kind: 'pass' }
  /** Forward (the provider acts), then answer `status` instead of the provider's answer. */
  | { kind: 'lose'; status: number }
  /** Forward, then reset the connection before any answer. */
  | { kind: 'reset' }
  /** Forward, then never answer (until the proxy stops). */
  | { kind: 'hang' }
  /** Answer `status` without forwarding (the provider never sees the request). */
  | { kind: 'answer'; status: number; body?: unknown }
  /** Forward once `until` resolves, then answer as the provider did. */
  | { kind: 'hold'; until: Promise<unknown> };

/** A request and what the proxy did with it, e.g. `lose500`. */
export interface ProxyRecord extends ProxiedRequest {
  action: string;
}

/** The error body both fakes' clients can read (Linode's `errors`, Vultr's `error`). */
const INJECTED = { errors: [{ reason: 'injected fault' }], error: 'injected fault' };
const FORWARDED_HEADERS = new Set(['content-type', 'retry-after']);

/** The proxy; `await new FaultProxy(() => fake.url).start()`. */
export class FaultProxy {
  url = '';
  readonly seen: ProxyRecord[] = [];
  rule: (r: ProxiedRequest) => FaultAction = () => ({ kind: 'pass' });
  private server: Server | undefined;
  private readonly held = new Set<ServerResponse>();

  constructor(private readonly target: () => string) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.url = await listenLoopback(this.server);
    return this;
  }

  async stop(): Promise<void> {
    for (const r of this.held) r.destroy();
    await closeServer(this.server);
  }

  /** The requests seen that `match`, with what was done to them. */
  actions(match: (r: ProxiedRequest) => boolean): string[] {
    return this.seen.filter(match).map((r) => r.action);
  }

  private async forward(req: IncomingMessage, url: URL, body: string): Promise<{ status: number; text: string; headers: Record<string, string> }> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && !['host', 'content-length', 'connection'].includes(k)) headers[k] = v;
    const res = await fetch(this.target() + url.pathname + url.search, { method: req.method, headers, body: body === '' ? undefined : body });
    const out: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      if (FORWARDED_HEADERS.has(k)) out[k] = v;
    });
    return { status: res.status, text: await res.text(), headers: out };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const r: ProxiedRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.search, body };
    const a = this.rule(r);
    this.seen.push({ ...r, action: a.kind + ('status' in a ? String(a.status) : '') });
    try {
      if (a.kind === 'answer') {
        res.writeHead(a.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(a.body ?? INJECTED));
        return;
      }
      if (a.kind === 'hold') {
        this.held.add(res);
        await a.until;
        this.held.delete(res);
      }
      const f = await this.forward(req, url, body);
      if (a.kind === 'lose') {
        res.writeHead(a.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(INJECTED));
      } else if (a.kind === 'reset') {
        req.socket.destroy();
      } else if (a.kind === 'hang') {
        this.held.add(res);
      } else {
        res.writeHead(f.status, f.headers);
        res.end(f.text);
      }
    } catch (e) {
      if (res.destroyed) return;
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ reason: String(e) }], error: String(e) }));
    }
  }
}
