/**
 * Prometheus metrics on their own registry (never prom-client's global one), served over HTTPS
 * with the same CA, certificate and TLS policy as the gRPC port. Any certificate that the fleet
 * CA signed, names one known gaxx role and is not revoked may scrape.
 */
import { createServer, type Server } from 'node:https';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { identityFromSan, normalizeSerial } from '../../certs/index.js';
import type { ListenAddress } from '../config.js';
import { listenOn } from '../transport/server.js';

/** The agent's instruments. */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly execs = new Counter({ name: 'gaxx_agent_exec_total', help: 'Finished executions by outcome', labelNames: ['outcome'], registers: [this.registry] });
  readonly started = new Counter({ name: 'gaxx_agent_tasks_started_total', help: 'Commands started (attach and replay excluded)', registers: [this.registry] });
  readonly replays = new Counter({ name: 'gaxx_agent_exec_reattach_total', help: 'Exec calls served from the task registry', labelNames: ['kind'], registers: [this.registry] });
  readonly duration = new Histogram({
    name: 'gaxx_agent_exec_duration_seconds',
    help: 'Execution wall time',
    buckets: [0.005, 0.02, 0.1, 0.5, 1, 5, 30, 120, 600, 3600],
    registers: [this.registry],
  });
  readonly running = new Gauge({ name: 'gaxx_agent_running_tasks', help: 'Tasks running now', registers: [this.registry] });
  readonly bytes = new Counter({ name: 'gaxx_agent_stream_bytes_total', help: 'Output bytes streamed', labelNames: ['stream'], registers: [this.registry] });
  readonly authFailures = new Counter({ name: 'gaxx_agent_auth_failures_total', help: 'Refused calls by reason', labelNames: ['reason'], registers: [this.registry] });
  readonly handshakeFailures = new Counter({ name: 'gaxx_agent_tls_handshake_failures_total', help: 'Failed TLS handshakes', registers: [this.registry] });

  constructor(version: string) {
    const info = new Gauge({ name: 'gaxx_agent_build_info', help: 'Build information', labelNames: ['version', 'node'], registers: [this.registry] });
    info.set({ version, node: process.version }, 1);
    collectDefaultMetrics({ register: this.registry });
  }
}

/** Serves `/metrics` on `listen` under mTLS; `revoked()` is read per request. */
export async function startMetricsServer(
  metrics: AgentMetrics,
  listen: ListenAddress,
  tlsOptions: SecureContextOptions,
  revoked: () => ReadonlySet<string>,
): Promise<{ server: Server; port: number }> {
  const server = createServer({ ...tlsOptions, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const cert = (req.socket as TLSSocket).getPeerCertificate();
    let allowed = false;
    try {
      identityFromSan(cert.subjectaltname);
      allowed = !revoked().has(normalizeSerial(cert.serialNumber));
    } catch {
      allowed = false;
    }
    if (!allowed) {
      metrics.authFailures.inc({ reason: 'metrics' });
      res.writeHead(403).end('forbidden\n');
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
  return { server, port: await listenOn(server, listen) };
}
