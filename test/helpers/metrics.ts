/** GETs over mTLS from an agent's HTTPS endpoints (metrics, profiling), as a monitor or operator would. */
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { request, type Agent } from 'node:https';
import { join } from 'node:path';

export interface HttpsGetOptions {
  port: number;
  /** The server's address, checked against its certificate (default 127.0.0.1, checked as `localhost`). */
  host?: string;
  path: string;
  /** The client's cert dir: its ca.pem is trusted, its cert.pem and key.pem presented (unless `noCert`). */
  certDir: string;
  noCert?: boolean;
  /** Source address (a loopback one, so an agent's per-address guards tell clients apart). */
  localAddress?: string;
  /** A keep-alive pool to send it through; default: a connection of its own. */
  agent?: Agent;
  /** Without the whole answer this long, the request is cut and rejects with NoAnswerError (default 10 s). */
  timeoutMs?: number;
}

export interface HttpsGetResult {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
  /** Whether it went over a connection kept from an earlier request (`agent` given). */
  reusedSocket: boolean;
}

/** The server did not answer in time: not a refusal, and never taken for one. */
export class NoAnswerError extends Error {}

/**
 * GET `path` on `host` (127.0.0.1):`port` over mTLS. Bounded: every test that waits on an agent's HTTPS
 * answer gets one within `timeoutMs`, or an error that says so.
 */
export function httpsGet(o: HttpsGetOptions): Promise<HttpsGetResult> {
  const read = (f: string) => readFileSync(join(o.certDir, f));
  const timeoutMs = o.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const fail = (e: Error) => {
      clearTimeout(timer);
      reject(e);
    };
    const req = request(
      {
        host: o.host ?? '127.0.0.1',
        port: o.port,
        path: o.path,
        ...(o.host ? {} : { servername: 'localhost' }),
        ca: read('ca.pem'),
        ...(o.noCert ? {} : { cert: read('cert.pem'), key: read('key.pem') }),
        ...(o.localAddress ? { localAddress: o.localAddress } : {}),
        agent: o.agent ?? false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('error', fail);
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers, reusedSocket: req.reusedSocket });
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new NoAnswerError(`GET ${o.path} on port ${o.port}: no answer in ${timeoutMs} ms`)), timeoutMs);
    req.on('error', fail);
    req.end();
  });
}

/** GET /metrics on 127.0.0.1:`port` with the cert dir's identity; rejects on a status other than 200. */
export async function scrapeMetrics(port: number, certDir: string): Promise<string> {
  const res = await httpsGet({ port, path: '/metrics', certDir });
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status}`);
  return res.body;
}

/** The value of an unlabelled sample `name` in a Prometheus text page (NaN when absent). */
export function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : NaN;
}

/** An agent (anything with its metrics port), and how often it was scraped (agentConnections). */
export interface WatchedAgent<A extends { metricsPort: number | undefined } = { metricsPort: number | undefined }> {
  agent: A;
  scrapes: number;
}

/**
 * The gRPC connections `w`'s agent accepted and has open, from its metrics, scraped with the
 * cert dir `certDir`: gaxx_agent_connections_total counts the metrics endpoint's connections
 * too, so each scrape (this one included) is taken off, and this scrape's own connection is
 * open while it is answered.
 */
export async function agentConnections(w: WatchedAgent, certDir: string): Promise<{ accepted: number; open: number }> {
  const body = await scrapeMetrics(w.agent.metricsPort as number, certDir);
  w.scrapes += 1;
  return { accepted: metricValue(body, 'gaxx_agent_connections_total') - w.scrapes, open: metricValue(body, 'gaxx_agent_connections_open') - 1 };
}
