/**
 * Simulated agents for the dashboard bench: one process serving many agents' metrics endpoints
 * (HTTPS with a required client certificate, as the agent's :9091) and one gRPC Info service
 * over mTLS they all point at, plus a writer of synthetic run results into Redis.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { Cluster, Redis } from 'ioredis';
import { secureContextOptions } from '../../certs/index.js';
import { loadProtos } from '../../proto/index.js';
import { indexRun, publishResult, taskResult, type MonitorTarget, type RunSpec, type TaskResult } from '../../scheduler/index.js';

export interface Pem {
  certPem: string;
  keyPem: string;
  caPem: string;
}

/** An agent's exposition, with counters that move between scrapes. */
function exposition(i: number, n: number): string {
  const lines = [
    '# HELP gaxx_agent_build_info Build information',
    '# TYPE gaxx_agent_build_info gauge',
    `gaxx_agent_build_info{version="0.1.0",node="v20"} 1`,
    '# HELP gaxx_agent_exec_total Finished executions by outcome',
    '# TYPE gaxx_agent_exec_total counter',
    `gaxx_agent_exec_total{outcome="succeeded"} ${n * 7 + i}`,
    `gaxx_agent_exec_total{outcome="failed"} ${n}`,
    '# HELP gaxx_agent_running_tasks Tasks running now',
    '# TYPE gaxx_agent_running_tasks gauge',
    `gaxx_agent_running_tasks ${(n + i) % 16}`,
    '# HELP gaxx_agent_exec_duration_seconds Execution wall time',
    '# TYPE gaxx_agent_exec_duration_seconds histogram',
  ];
  for (const le of ['0.005', '0.02', '0.1', '0.5', '1', '5', '30', '120', '600', '3600', '+Inf'])
    lines.push(`gaxx_agent_exec_duration_seconds_bucket{le="${le}"} ${n * 8}`);
  lines.push(`gaxx_agent_exec_duration_seconds_sum ${n * 0.4}`, `gaxx_agent_exec_duration_seconds_count ${n * 8}`);
  for (const m of [
    'process_cpu_user_seconds_total',
    'process_cpu_system_seconds_total',
    'process_resident_memory_bytes',
    'nodejs_heap_size_used_bytes',
    'nodejs_eventloop_lag_seconds',
  ]) {
    lines.push(`# HELP ${m} ${m}`, `# TYPE ${m} ${m.endsWith('_total') ? 'counter' : 'gauge'}`, `${m} ${(n * 1.5 + i) % 1e6}`);
  }
  return lines.join('\n') + '\n';
}

/** Serves `count` metrics endpoints on 127.0.0.1; returns their ports and a closer. */
export async function serveMetrics(count: number, pem: Pem): Promise<{ ports: number[]; close: () => Promise<void> }> {
  const servers: Server[] = [];
  const scrapes = new Array<number>(count).fill(0);
  for (let i = 0; i < count; i++) {
    const s = createServer({ ...secureContextOptions(pem), requestCert: true, rejectUnauthorized: true }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(exposition(i, ++scrapes[i]!));
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    servers.push(s);
  }
  return {
    ports: servers.map((s) => (s.address() as AddressInfo).port),
    close: async () => {
      for (const s of servers) s.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}

/** One gRPC server answering Info (with a moving load) for every simulated agent. */
export async function serveInfo(pem: Pem): Promise<{ address: string; close: () => Promise<void> }> {
  const { agent } = loadProtos();
  const server = new grpc.Server();
  let calls = 0;
  const notAfter = Date.now() + 20 * 86400_000;
  server.addService(agent.gaxx.agent.v1.Agent.service, {
    info: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
      calls++;
      const load = ((calls * 37) % 400) / 100;
      cb(null, {
        version: '0.1.0',
        hostname: 'sim',
        uid: 1000,
        capacity: 16,
        runningTasks: calls % 16,
        loadAverage: [load, load * 0.8, load * 0.6],
        certNotAfterUnixMs: notAfter,
        certSerial: '01',
        fleet: '',
        host: 'sim',
        environment: 'production',
        uptimeMs: 1000,
        blockedPeers: [],
        tasksStartedTotal: calls,
      });
    },
  });
  const creds = grpc.ServerCredentials.createSsl(
    Buffer.from(pem.caPem),
    [{ cert_chain: Buffer.from(pem.certPem), private_key: Buffer.from(pem.keyPem) }],
    true,
  );
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
  return { address: `127.0.0.1:${port}`, close: () => new Promise((r) => server.tryShutdown(() => r())) };
}

/** Targets for the simulated agents: fleet-less, so one certificate naming 127.0.0.1 serves all. */
export function simTargets(infoAddress: string, metricsPorts: number[]): MonitorTarget[] {
  return metricsPorts.map((p, i) => ({ fleet: '', host: `sim-${String(i + 1).padStart(3, '0')}`, address: infoAddress, metricsAddress: `127.0.0.1:${p}` }));
}

/**
 * Indexes a run of `total` tasks and publishes synthetic results at `perSecond`, spread over
 * `hosts`; 1% fail with a few lines of output. Resolves when all are written.
 */
export async function writeRun(redis: Redis | Cluster, runId: string, total: number, hosts: string[], perSecond: number): Promise<void> {
  const run = { runId, tasks: Array.from({ length: total }, () => ({ argv: ['bench-task'] })) } as unknown as RunSpec;
  await indexRun(redis, run);
  const batch = Math.max(1, Math.round(perSecond / 10));
  for (let i = 0; i < total;) {
    const t0 = Date.now();
    const writes: Array<Promise<boolean>> = [];
    for (const end = Math.min(total, i + batch); i < end; i++) {
      const failed = i % 100 === 99;
      const r: TaskResult = taskResult(
        { runId, taskId: `t${i}`, host: hosts[i % hosts.length] as string, outcome: failed ? 'failed' : 'succeeded', reason: '' },
        { exitCode: failed ? 1 : 0, durationMs: 20, attempts: 1, finishedAt: new Date().toISOString() },
      );
      writes.push(publishResult(redis, r, failed ? [{ stream: 2, data: Buffer.from(`task t${i} failed\nsome output line\n`) }] : []));
    }
    await Promise.all(writes);
    await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t0))));
  }
}
