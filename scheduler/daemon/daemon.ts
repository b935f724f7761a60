/**
 * The scheduler daemon (`gaxx scheduler`): a worker for every fleet's tasks, a heartbeat so
 * `gaxx run` knows a daemon is serving the queue, and its own Prometheus endpoint. Several
 * daemons on one Redis share the work (BullMQ hands each job to one worker at a time).
 *
 * Heartbeat: member `<id>` of the sorted set `{gaxx}:schedulers`, scored with the time it
 * expires (now + 3 heartbeats); a daemon that dies stops refreshing and ages out by itself.
 *
 * Metrics: plain HTTP on a loopback address by default; any other address needs TLS with a
 * required client certificate from the fleet CA (`metricsTls`), as the agents' :9091 does.
 * With `ui`, the daemon also collects the fleets' metrics and serves the dashboard (scheduler/ui).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import type { Cluster, Redis } from 'ioredis';
import { GaxxError, isGaxxError, isLoopbackHost, parseHostPort } from '../../proto/index.js';
import type { SecureContextOptions } from 'node:tls';
import { fleetEndpoint, type AgentConnector, type AgentEndpoint } from '../dispatch/agent-pool.js';
import { warmingConnector, type WarmingConnector } from '../dispatch/connector.js';
import { publishBreakers } from './breakers.js';
import { SchedulerMetrics } from './metrics.js';
import { fleetAgents, registeredFleets } from '../queue/fleets.js';
import { TaskQueue } from '../queue/queue.js';
import { bounded, CLEANUP_MS } from '../queue/run-landing.js';
import { durabilityWarnings, gaxxKey, type RedisSettings } from '../redis/redis.js';
import { MAX_RUNS } from '../dispatch/run-discovery.js';
import { SchedulerWorker, type WorkerLog } from '../dispatch/worker.js';
import { Dashboard, type DashboardOptions } from '../ui/dashboard.js';
import { fleetTargets } from '../ui/targets.js';
import { bindServer, guardedServer, listenFailure, notLoopback } from '../ui/http.js';

export const HEARTBEAT_KEY = gaxxKey('schedulers');

/**
 * How long the connections a daemon opens at its start to the registered fleets' agents wait
 * for a run to take them (connectFleets): an agent closes a connection with no call after 5
 * minutes anyway. Past this, the ones no run took are closed.
 */
export const FLEET_CONNECT_WAIT_MS = 5 * 60 * 1000;

export interface DaemonOptions {
  settings: RedisSettings;
  connect: AgentConnector;
  /** Ends the wait for Redis to be ready at start (CANCELLED): a Ctrl-C of a daemon that never started. */
  stop?: AbortSignal;
  concurrency?: number;
  /** Runs served at once (default MAX_RUNS, dispatch/run-discovery.ts); more wait for a slot. */
  maxRuns?: number;
  /** `host:port` for /metrics; empty or undefined: no metrics endpoint. */
  metricsListen?: string;
  /** What to do when something already listens on `metricsListen` (the setting that picks another). */
  metricsInUse?: string;
  /** Required for a non-loopback metrics address: server cert/key/CA (client certs are required). */
  metricsTls?: SecureContextOptions;
  id?: string;
  heartbeatMs?: number;
  lockDurationMs?: number;
  /** The local metrics collection and dashboard (scheduler/ui), watching the registered fleets. */
  ui?: Pick<DashboardOptions, 'listen' | 'inUse' | 'tls' | 'token' | 'creds' | 'scrapeIntervalMs'>;
  log: WorkerLog;
}

/** Whether some scheduler daemon has refreshed its heartbeat recently. */
export async function schedulerAlive(redis: Redis | Cluster, now = Date.now()): Promise<boolean> {
  await redis.zremrangebyscore(HEARTBEAT_KEY, '-inf', now);
  return (await redis.zcount(HEARTBEAT_KEY, now, '+inf')) > 0;
}

function splitListen(addr: string): { host: string; port: number } {
  try {
    return parseHostPort(addr, { allowPortZero: true, what: 'metrics address' });
  } catch (e) {
    throw new GaxxError('CONFIG_INVALID', (e as Error).message, { cause: e });
  }
}

/** A running daemon. */
export class SchedulerDaemon {
  private timer: NodeJS.Timeout | undefined;
  private server: Server | undefined;
  /** The dashboard, when `ui` was given. */
  dashboard: Dashboard | undefined;
  /** Why the dashboard asked for was not started (its address taken): the daemon serves on without it. */
  dashboardError: string | undefined;
  readonly id: string;

  /** Closes the connections connectFleets opened that no run took. */
  private fleetLinksTimer: NodeJS.Timeout | undefined;
  private stopping = false;

  private constructor(
    readonly worker: SchedulerWorker,
    readonly queue: TaskQueue,
    readonly metrics: SchedulerMetrics,
    private readonly opts: DaemonOptions,
    private readonly warming: WarmingConnector,
  ) {
    this.id = opts.id ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  }

  /** Starts the worker, heartbeat and metrics endpoint; warns about a Redis that can lose jobs. */
  static async start(opts: DaemonOptions): Promise<SchedulerDaemon> {
    const queue = await TaskQueue.open(opts.settings, 5000, 'worker', opts.stop);
    for (const w of await durabilityWarnings(queue.redis)) opts.log.warn({ redis: opts.settings.display }, w);
    const metrics = new SchedulerMetrics({ processMetrics: true });
    metrics.attach({ depth: () => queue.depth() });
    const warming = warmingConnector(opts.connect);
    const worker = SchedulerWorker.start({
      settings: opts.settings,
      connect: warming.connect,
      concurrency: opts.concurrency,
      maxRuns: opts.maxRuns,
      lockDurationMs: opts.lockDurationMs,
      metrics,
      log: opts.log,
    });
    const d = new SchedulerDaemon(worker, queue, metrics, opts, warming);
    await worker.ready();
    d.connectFleets();
    await d.beat();
    d.timer = setInterval(() => void d.beat().catch((e: Error) => opts.log.warn({ err: e.message }, 'heartbeat failed')), opts.heartbeatMs ?? 2000);
    if (opts.metricsListen) {
      await d.serveMetrics(opts.metricsListen).catch(async (e: unknown) => {
        await d.stop(0);
        throw e;
      });
    }
    if (opts.ui) await d.startDashboard(opts.ui);
    opts.log.info(
      {
        id: d.id,
        concurrency: opts.concurrency ?? 64,
        maxRuns: opts.maxRuns ?? MAX_RUNS,
        redis: opts.settings.display,
        metrics: d.metricsAddress(),
        dashboardPort: d.dashboard?.port,
      },
      'scheduler started',
    );
    return d;
  }

  private async startDashboard(ui: NonNullable<DaemonOptions['ui']>): Promise<void> {
    const queue = this.queue;
    this.dashboard = await Dashboard.start({
      ...ui,
      targets: () => fleetTargets(queue.redis),
      redis: queue.redis,
      depth: () => queue.depth(),
      ownMetrics: () => this.metrics.text(),
      breakers: () => this.worker.pool.states(),
      log: this.opts.log,
    }).catch(async (e: unknown) => {
      // A taken port costs the dashboard, not the queue: the daemon's work goes on.
      if (isGaxxError(e, 'FAILED_PRECONDITION')) {
        this.dashboardError = (e as Error).message;
        return void this.opts.log.warn({ err: this.dashboardError }, 'dashboard not started');
      }
      await this.stop(0);
      throw e;
    });
  }

  /**
   * Opens a connection to every agent of the registered fleets, without a call, and hands each
   * to the worker's first task on that agent: the first run after a daemon starts does not pay
   * its agents' TLS handshakes (50 local agents on a 2-core machine, 5 s after the start: that
   * run's median 1.7 s -> 1.4 s). Those no run takes within FLEET_CONNECT_WAIT_MS are closed.
   * Not awaited: a daemon serves at once, and a task that comes first opens its own connection
   * (that agent is then not connected twice).
   */
  private connectFleets(): void {
    const redis = this.queue.redis;
    void (async () => {
      const endpoints: AgentEndpoint[] = [];
      for (const fleet of await registeredFleets(redis)) {
        for (const a of await fleetAgents(redis, fleet)) endpoints.push(fleetEndpoint(fleet, a));
      }
      if (this.stopping) return;
      this.warming.warm(endpoints);
      this.fleetLinksTimer = setTimeout(() => this.warming.close(), FLEET_CONNECT_WAIT_MS);
      this.fleetLinksTimer.unref();
    })().catch((e: Error) => {
      // A daemon stopped meanwhile (a start that failed) closed the queue this read.
      if (!this.stopping) this.opts.log.warn({ err: e.message }, "could not connect ahead to the registered fleets' agents");
    });
  }

  private async beat(): Promise<void> {
    const ttl = 3 * (this.opts.heartbeatMs ?? 2000);
    await this.queue.redis.zadd(HEARTBEAT_KEY, Date.now() + ttl, this.id);
    await publishBreakers(this.queue.redis, this.id, this.worker.pool.states(), ttl);
  }

  private async serveMetrics(listen: string): Promise<void> {
    const { host, port } = splitListen(listen);
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      this.metrics.text().then(
        (body) => res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(body),
        () => res.writeHead(500).end(),
      );
    };
    const loopback = isLoopbackHost(host);
    if (!loopback && !this.opts.metricsTls) throw notLoopback(`metrics on ${listen}`, host, 'need TLS (a scheduler certificate)');
    // Bounded connections and short request timeouts, as the dashboard's: on loopback anyone may connect.
    this.server = guardedServer(this.opts.metricsTls, handler).server;
    await bindServer(this.server, {
      listen,
      host,
      port,
      loopback: loopback && !this.opts.metricsTls,
      what: 'metrics',
      fail: (e) => listenFailure('metrics cannot listen', listen, e, this.opts.metricsInUse),
    });
  }

  /** `host:port` the metrics endpoint listens on, if any. */
  metricsAddress(): string | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}` : undefined;
  }

  /** SIGTERM path: stop taking jobs, finish or hand back in-flight ones, drop the heartbeat. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    clearTimeout(this.fleetLinksTimer);
    this.warming.close();
    this.opts.log.info({ id: this.id, graceMs }, 'scheduler draining');
    await this.dashboard?.stop();
    await this.worker.drain(graceMs);
    // A Redis that does not answer keeps neither: the heartbeat ages out by itself.
    await bounded(this.queue.redis.zrem(HEARTBEAT_KEY, this.id), CLEANUP_MS);
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    if (
      (await bounded(
        this.queue.close().then(() => true),
        CLEANUP_MS,
      )) !== true
    )
      this.queue.redis.disconnect();
    this.opts.log.info({ id: this.id }, 'scheduler stopped');
  }
}
