/**
 * Prometheus metrics on their own registry (never prom-client's global one), served over HTTPS
 * with the same CA, certificate and TLS policy as the gRPC port, and the same guards. Monitor,
 * operator and scheduler certificates that are not revoked may scrape; agents may not.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type PeerCertificate, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Identity } from '../../certs/index.js';
import { BusyLoopDelay, isGaxxError } from '../../proto/index.js';
import { normalizeAddress } from '../transport/blocklist.js';
import type { TransportGuardHooks } from '../transport/transport-guards.js';
import type { ListenAddress } from '../config.js';
import { listenOn } from '../transport/server.js';

/** The agent's instruments. */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly execs = new Counter({ name: 'gaxx_agent_exec_total', help: 'Finished executions by outcome', labelNames: ['outcome'], registers: [this.registry] });
  readonly started = new Counter({ name: 'gaxx_agent_tasks_started_total', help: 'Commands started (attach and replay excluded)', registers: [this.registry] });
  readonly warmStarts = new Counter({
    name: 'gaxx_agent_warm_starts_total',
    help: 'Tasks started in a sandbox started ahead of them (--warm-sandboxes)',
    registers: [this.registry],
  });
  readonly replays = new Counter({
    name: 'gaxx_agent_exec_reattach_total',
    help: 'Exec calls served from the task registry',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'gaxx_agent_exec_duration_seconds',
    help: 'Execution wall time',
    buckets: [0.005, 0.02, 0.1, 0.5, 1, 5, 30, 120, 600, 3600],
    registers: [this.registry],
  });
  readonly running = new Gauge({ name: 'gaxx_agent_running_tasks', help: 'Tasks running now', registers: [this.registry] });
  readonly bytes = new Counter({ name: 'gaxx_agent_stream_bytes_total', help: 'Output bytes streamed', labelNames: ['stream'], registers: [this.registry] });
  readonly authFailures = new Counter({
    name: 'gaxx_agent_auth_failures_total',
    help: 'Refused calls by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly handshakeFailures = new Counter({ name: 'gaxx_agent_tls_handshake_failures_total', help: 'Failed TLS handshakes', registers: [this.registry] });

  /** Drives the event-loop delay histogram: the task registry reports each task's start and end. */
  readonly loop: BusyLoopDelay;

  constructor(version: string) {
    const info = new Gauge({ name: 'gaxx_agent_build_info', help: 'Build information', labelNames: ['version', 'node'], registers: [this.registry] });
    info.set({ version, node: process.version }, 1);
    // The event-loop delay histogram samples every 100 ms, not prom-client's 10 (at 10 ms an idle
    // agent woke 100 times a second for it alone, ~8 ms of CPU a second here), and only while
    // tasks run and 10 s after (proto/loop-delay.ts). A stall that spans a sample is still
    // recorded in full.
    this.loop = BusyLoopDelay.collecting(() => collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 }));
  }
}

/** The guards the metrics listener shares with the gRPC port. */
export interface MetricsGuards {
  /** The transport guards (block list, connection caps, handshake failures counted and audited). */
  hooks: TransportGuardHooks;
  handshakeTimeoutMs: number;
  /** The role policy for a scrape (monitor, operator, scheduler; revoked and CA certificates refused). */
  authorize(cert: PeerCertificate): Identity;
  /** A refused scrape: counted toward blocking the address and audited. */
  onDenied(peer: string, code: string): void;
}

/**
 * How long an idle scrape connection stays open: longer than the dashboard collector's interval
 * (5 s) and a usual Prometheus scrape interval (15-60 s). The server announces it
 * (`Keep-Alive: timeout=65`), and Node's client drops the socket a second before.
 */
export const METRICS_KEEP_ALIVE_MS = 65_000;

/** A GaxxError's code from authorize, or INTERNAL. */
function scrapeVerdict(g: MetricsGuards, socket: TLSSocket): string | undefined {
  try {
    g.authorize(socket.getPeerCertificate(true));
    return undefined;
  } catch (e) {
    return isGaxxError(e) ? e.code : 'INTERNAL';
  }
}

/** A TLS listener as the agent manages it: new certificates on rotation, closed on stop. */
export interface HttpListener {
  setSecureContext(options: SecureContextOptions): void;
  closeAllConnections(): void;
  close(cb: () => void): void;
}

/**
 * Serves `/metrics` on `listen` under mTLS, behind the same guards as the gRPC port and built the
 * same way: TCP connections pass the block list and connection caps before TLS, a tls.Server
 * with the handshake deadline authenticates them (failures counted and audited), and only
 * verified sockets reach the HTTP server, where each scrape is authorized by role.
 */
export async function startMetricsServer(
  metrics: AgentMetrics,
  listen: ListenAddress,
  tlsOptions: SecureContextOptions,
  guards: MetricsGuards,
): Promise<{ server: HttpListener; port: number }> {
  const http = createHttpServer((req, res) => {
    const socket = req.socket as TLSSocket;
    const code = scrapeVerdict(guards, socket);
    if (code) {
      metrics.authFailures.inc({ reason: 'metrics' });
      // Counted once the refusal is sent, so the scrape that gets its address blocked still
      // learns why.
      res.on('finish', () => guards.onDenied(normalizeAddress(socket.remoteAddress), code));
      // A refused peer keeps no connection: only authorized scrapers are kept alive.
      res.writeHead(403, { 'gaxx-error-code': code, connection: 'close' }).end('forbidden\n');
      return;
    }
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    metrics.registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
      () => res.writeHead(500).end('error\n'),
    );
  });
  // An authenticated scraper keeps its connection between scrapes (each scrape is still
  // authorized by role): a new mTLS handshake per scrape costs both ends a few ms of CPU, every
  // agent of a fleet at every collector round.
  http.keepAliveTimeout = METRICS_KEEP_ALIVE_MS;
  const tls = createTlsServer({ ...tlsOptions, requestCert: true, rejectUnauthorized: true, handshakeTimeout: guards.handshakeTimeoutMs });
  tls.on('secureConnection', (s: TLSSocket) => {
    if (!s.authorized || !guards.hooks.onSecure(s)) return void s.destroy();
    http.emit('connection', s);
  });
  tls.on('tlsClientError', (err: Error & { code?: string }, s: TLSSocket) => {
    guards.hooks.onHandshakeError(err, s);
    s.destroy();
  });
  const sockets = new Set<Socket>();
  const net = createNetServer((socket) => {
    socket.on('error', () => socket.destroy());
    if (!guards.hooks.onConnection(socket)) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    tls.emit('connection', socket);
  });
  const port = await listenOn(net, listen);
  const server: HttpListener = {
    setSecureContext: (options) => tls.setSecureContext({ ...tlsOptions, ...options }),
    closeAllConnections: () => {
      for (const s of sockets) s.destroy();
    },
    close: (cb) => {
      http.close();
      net.close(() => cb());
    },
  };
  return { server, port };
}
