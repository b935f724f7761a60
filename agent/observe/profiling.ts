/**
 * Development-only profiling on :6060 over HTTPS with the same mTLS policy as the gRPC port,
 * and the operator role only (a heap snapshot holds whatever is in memory). main.ts never
 * starts it in production. `/debug/cpu?seconds=N` returns a .cpuprofile, `/debug/heap` a heap
 * snapshot, both through node:inspector.
 */
import { createServer, type Server } from 'node:https';
import { Session } from 'node:inspector';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { identityFromSan, normalizeSerial } from '../../certs/index.js';
import type { ListenAddress } from '../config.js';
import { listenOn } from '../transport/server.js';

function post(session: Session, method: string, params?: object): Promise<unknown> {
  return new Promise((resolve, reject) => session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));
}

async function cpuProfile(seconds: number): Promise<string> {
  const s = new Session();
  s.connect();
  try {
    await post(s, 'Profiler.enable');
    await post(s, 'Profiler.start');
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const res = (await post(s, 'Profiler.stop')) as { profile: unknown };
    return JSON.stringify(res.profile);
  } finally {
    s.disconnect();
  }
}

async function heapSnapshot(): Promise<string> {
  const s = new Session();
  s.connect();
  const parts: string[] = [];
  s.on('HeapProfiler.addHeapSnapshotChunk', (m) => parts.push((m.params as { chunk: string }).chunk));
  try {
    await post(s, 'HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    return parts.join('');
  } finally {
    s.disconnect();
  }
}

function isOperator(socket: TLSSocket, revoked: ReadonlySet<string>): boolean {
  const cert = socket.getPeerCertificate();
  try {
    return identityFromSan(cert.subjectaltname).role === 'operator' && !revoked.has(normalizeSerial(cert.serialNumber));
  } catch {
    return false;
  }
}

/** Starts the profiling server. */
export async function startProfilingServer(
  listen: ListenAddress,
  tlsOptions: SecureContextOptions,
  revoked: () => ReadonlySet<string>,
): Promise<{ server: Server; port: number }> {
  const server = createServer({ ...tlsOptions, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    if (!isOperator(req.socket as TLSSocket, revoked())) {
      res.writeHead(403).end('forbidden\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'https://agent');
    const work =
      url.pathname === '/debug/cpu'
        ? cpuProfile(Math.min(Math.max(Number(url.searchParams.get('seconds') ?? 5) || 5, 1), 60))
        : url.pathname === '/debug/heap'
          ? heapSnapshot()
          : undefined;
    if (!work) {
      res.writeHead(404).end('not found\n');
      return;
    }
    work.then(
      (body) => res.writeHead(200, { 'content-type': 'application/json' }).end(body),
      () => res.writeHead(500).end('error\n'),
    );
  });
  return { server, port: await listenOn(server, listen) };
}
