/**
 * The local metrics collection and dashboard (default 127.0.0.1:9090): the collector's rounds,
 * the run tracker's ticks and the HTTP side put together, the first two only while someone
 * watches (WATCH_MS). `/metrics` for Prometheus; `/` the
 * page; `/events` server-sent events with what changed (agents, runs, queue depth) at most once
 * per tick; `/api/state` the whole picture; `POST /api/runs/<id>/cancel` cancels a run. The
 * page, its events and `/api/state` take `?fleet=a,b` to watch only those fleets (fleet-view.ts).
 * Nothing waits on Redis unbounded: a Redis that gives no answer (REDIS_ANSWER_MS) is said to the
 * page and a cancel answered 503, the rest served as ever.
 * Started by the scheduler daemon, or by `gaxx ui` when no daemon serves it.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { SecureContextOptions } from 'node:tls';
import type { Cluster, Redis } from 'ioredis';
import type { Credentials } from '../../certs/index.js';
import { formatHostPort, GaxxError, raceAbort } from '../../proto/index.js';
import { agentKey } from '../dispatch/agent-pool.js';
import type { BreakerState } from '../dispatch/breaker.js';
import { requestCancel } from '../queue/cancel.js';
import { connectionLost, RECONNECT_MS, redisError, whileAway } from '../redis/redis.js';
import type { WorkerLog } from '../dispatch/worker.js';
import { loadAssets, type Asset } from './assets.js';
import { Collector } from './collector.js';
import { buildExposition } from './exposition.js';
import { gate, listen, loopbackHosts, newToken, SECURITY_HEADERS, type Trust } from './http.js';
import { RunTracker, type RunView } from './runs.js';
import { fleetLimitViews, fleetsView, requestedFleets, type FleetLimitsView } from './fleet-view.js';
import { agentView, byFleetHost, type AgentView } from './agent-view.js';
import { EventHub } from './sse.js';
import type { MonitorTarget } from './targets.js';

/** The key of a watched agent's breaker (agentKey): its address and the identity its fleet expects there. */
const breakerKey = (t: MonitorTarget): string => agentKey({ address: t.address, ...(t.fleet ? { expect: { fleet: t.fleet, host: t.host } } : {}) });

/** The default address, as gaxx's security guide lists it. */
export const DEFAULT_UI_LISTEN = '127.0.0.1:9090';

export interface DashboardOptions {
  /** host:port (default 127.0.0.1:9090; port 0 picks one). */
  listen?: string;
  /** What to do when something already listens on `listen` (the flag that picks another address). */
  inUse?: string;
  /** Off loopback: server certificate, key and CA (client certificates required). */
  tls?: SecureContextOptions;
  /** Default: a fresh random one. */
  token?: string;
  /** The monitor certificate the agents are asked with (a source: the one in force each round). */
  creds: Credentials;
  targets: () => Promise<MonitorTarget[]>;
  /** Runs, cancel and queue depth need Redis; without it the page shows agents only. */
  redis?: Redis | Cluster;
  depth?: () => Promise<Record<string, number>>;
  /** This process's own metrics text (the scheduler's registry). */
  ownMetrics?: () => Promise<string>;
  /**
   * Breaker state by agent key (agentKey: address and expected identity): the daemon's own worker's, or (`gaxx ui` on its own) what
   * the running daemons publish; read once per tick.
   */
  breakers?: () => Map<string, BreakerState> | Promise<Map<string, BreakerState>>;
  scrapeIntervalMs?: number;
  /** How often runs and queue are read and changes pushed (default 1 s). */
  tickMs?: number;
  /**
   * How long after its last request (the page, its event stream, the API, /metrics) the
   * dashboard goes on collecting with nobody watching (default WATCH_MS): then the collector's
   * rounds and the runs' reads pause until the next request. It starts paused.
   */
  watchMs?: number;
  log: WorkerLog;
}

/**
 * How long the dashboard collects after its last request (DashboardOptions.watchMs): longer
 * than a Prometheus scrape interval (15 s to 1 min) and a page's reconnects. Nobody watching, a
 * daemon's collection would cost every agent of every registered fleet an Info call and a scrape
 * each interval (~4-9 ms of its CPU each here), and the daemon and Redis a read of the runs
 * every second, for nothing: on a local fleet, that CPU was taken from the fleet's tasks.
 */
export type { AgentView } from './agent-view.js';

export const WATCH_MS = 120_000;
/** The longest a request that resumes collection waits for the fresh round (each look at an agent has a deadline of 4 s at most). */
const FRESH_WAIT_MS = 5000;
/**
 * The longest the dashboard waits for Redis's answer before it says Redis is not answering: a
 * cancel is answered 503 then, and the page told. A Redis that is down fails its commands at
 * once; one that hangs (stopped, swapping, a network that drops packets: the connection stays
 * up) answers none, and a request that waited for it had no answer at all. Longer than a
 * reconnect (RECONNECT_MS): a cancel just after an outage still lands.
 */
export const REDIS_ANSWER_MS = RECONNECT_MS + 2000;

/** REDIS_UNAVAILABLE for a Redis that gave no answer within REDIS_ANSWER_MS. */
const notAnswering = (what: string): GaxxError =>
  new GaxxError('REDIS_UNAVAILABLE', `redis is not answering (no reply within ${REDIS_ANSWER_MS / 1000} s) ${what}`, { details: { reason: 'no-answer' } });

/** `op`'s outcome, or notAnswering(what) after REDIS_ANSWER_MS (`op` goes on; its late outcome is dropped). */
async function answered<T>(op: Promise<T>, what: string): Promise<T> {
  const late = op.then((v) => ({ v }));
  late.catch(() => undefined);
  const r = await raceAbort(late, [], REDIS_ANSWER_MS);
  if (r === 'tick' || r === 'stop') throw notAnswering(what);
  return r.v;
}

/** A running dashboard. */
export class Dashboard {
  readonly collector: Collector;
  readonly runs: RunTracker | undefined;
  private readonly hub = new EventHub();
  private timer: NodeJS.Timeout | undefined;
  private lastAgents = '';
  private lastQueue = '';
  private lastFleets = '';
  private fleetLimits: FleetLimitsView[] = [];
  private breakerStates = new Map<string, BreakerState>();
  private queueDepth: Record<string, number> = {};
  private ticking = false;
  /** Agent address -> host name, refreshed each collector round. */
  private hostByAddress = new Map<string, string>();
  /** When the dashboard last had a request: none yet, it starts idle. */
  private askedAt = -Infinity;
  /** The last tick found nobody watching: runs, queue and limits are as it left them. */
  private tickIdle = false;
  /** The tick the last resume started (settled once it ended). */
  private resumed: Promise<void> | undefined;
  /** Why Redis is of no use now (down, or not answering), as the page shows it; undefined when it answers. */
  private redisTrouble: string | undefined;

  private constructor(
    private readonly opts: DashboardOptions,
    private readonly server: Server,
    readonly token: string,
    readonly url: string,
    private readonly assets: Map<string, Asset>,
  ) {
    this.runs = opts.redis ? new RunTracker(opts.redis, (address) => this.hostOf(address)) : undefined;
    this.collector = new Collector({
      creds: opts.creds,
      targets: opts.targets,
      intervalMs: opts.scrapeIntervalMs,
      onRound: (states) => {
        this.hostByAddress = new Map(states.map((s) => [s.address, s.host]));
        this.pushAgents();
      },
      onError: (e) => opts.log.warn({ component: 'ui', err: e.message }, 'collector round failed'),
      wanted: () => this.watched(),
    });
  }

  /** An event stream is open, or a request came within watchMs. */
  private watched(): boolean {
    return this.hub.size > 0 || Date.now() - this.askedAt < (this.opts.watchMs ?? WATCH_MS);
  }

  /**
   * A request: collection goes on (or again, at once, after a pause) for watchMs. Resolves once
   * what a pause left old is fresh again (a round, a tick), at most FRESH_WAIT_MS (or an
   * interval, when shorter) later: a scrape's own timeout (Prometheus: 10 s) must not run out.
   */
  private async asked(): Promise<void> {
    this.askedAt = Date.now();
    // The tick that catches up after a pause, which every request that comes while it runs waits for.
    if (this.tickIdle) {
      this.tickIdle = false;
      this.resumed = this.tick();
    }
    const fresh = Promise.all([this.collector.wake(), this.resumed]).catch(() => undefined);
    await raceAbort(fresh, [], Math.min(this.collector.intervalMs, FRESH_WAIT_MS));
  }

  /** Listens, collecting from the first request on (watched()); CONFIG_INVALID for a non-loopback address without TLS. */
  static async start(opts: DashboardOptions): Promise<Dashboard> {
    const token = opts.token ?? newToken();
    const assets = loadAssets();
    // The server answers before the dashboard object exists (503 for that instant).
    const ref: { d?: Dashboard } = {};
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      if (ref.d) ref.d.handle(req, res);
      else res.writeHead(503).end();
    };
    const l = await listen({ listen: opts.listen ?? DEFAULT_UI_LISTEN, tls: opts.tls, inUse: opts.inUse }, handler);
    const url = `${opts.tls ? 'https' : 'http'}://${formatHostPort(l.host, l.port)}/?token=${token}`;
    const self = new Dashboard(opts, l.server, token, url, assets);
    self.hosts = l.loopback ? loopbackHosts(l.host, l.port) : undefined;
    self.trust = l.trust;
    ref.d = self;
    self.collector.start();
    self.timer = setInterval(() => void self.tick(), opts.tickMs ?? 1000);
    void self.tick();
    return self;
  }

  private hosts: Set<string> | undefined;
  /** Marks a connection that showed the token: it keeps its place when connections run out. */
  private trust: Trust | undefined;
  /**
   * Served without the token: /metrics (on loopback; elsewhere TLS with a client certificate
   * guards it) and the page's static files, the code shipped with gaxx, holding no data. The page
   * itself, its event stream and the API need the token, given in the URL (a POST: the header).
   */
  private get open(): ReadonlySet<string> {
    this.openPaths ??= new Set(['/metrics', ...[...this.assets.keys()].filter((p) => p.startsWith('/assets/'))]);
    return this.openPaths;
  }
  private openPaths: ReadonlySet<string> | undefined;

  private hostOf(address: string): string {
    return this.hostByAddress.get(address) ?? address;
  }

  /** The port listened on. */
  get port(): number {
    const a = this.server.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /** The agents as the page shows them. */
  agentViews(): AgentView[] {
    return [...this.collector.states.values()].sort(byFleetHost).map((s) => agentView(s, this.breakerStates.get(breakerKey(s))));
  }

  /** The whole picture (of `fleets` only, when given), as `/api/state` and the first events of a stream send it. */
  snapshot(fleets?: Set<string>): {
    agents: AgentView[];
    runs: RunView[];
    queue: Record<string, number>;
    fleets: FleetLimitsView[];
    scrapeIntervalMs: number;
    watching?: string[];
    redis?: { error: string | null };
  } {
    const all = { agents: this.agentViews(), runs: this.runs?.all() ?? [], fleets: this.fleetLimits };
    const view = fleets ? fleetsView(fleets) : undefined;
    const pick = <T>(event: string, v: T[]): T[] => (view ? ((view(event, v) as T[] | undefined) ?? []) : v);
    return {
      agents: pick('agents', all.agents),
      runs: pick('runs', all.runs),
      queue: this.queueDepth,
      fleets: pick('fleets', all.fleets),
      scrapeIntervalMs: this.collector.intervalMs,
      ...(fleets ? { watching: [...fleets].sort() } : {}),
      // Runs, queue and limits are as Redis last gave them: this says whether it still does.
      ...(this.opts.redis ? { redis: { error: this.redisTrouble ?? null } } : {}),
    };
  }

  /** The `/metrics` text. */
  async exposition(): Promise<string> {
    const own = (await this.opts.ownMetrics?.().catch(() => '')) ?? '';
    return buildExposition(own, [...this.collector.states.values()]);
  }

  private pushAgents(): void {
    const agents = this.agentViews();
    const text = JSON.stringify(agents);
    if (text === this.lastAgents) return;
    this.lastAgents = text;
    this.hub.send('agents', agents, text);
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    if (!this.watched()) {
      this.tickIdle = true;
      return;
    }
    this.ticking = true;
    try {
      const reads = this.readRedis();
      // A Redis that hangs holds the tick (ticks never overlap) until it answers; meanwhile the page is told.
      const first = await raceAbort(reads, [], REDIS_ANSWER_MS);
      if (first === 'tick') this.setRedisTrouble(notAnswering('').message.trimEnd());
      await reads;
      this.setRedisTrouble(undefined);
    } catch (e) {
      if (this.opts.redis && connectionLost(e)) this.setRedisTrouble(redisError(e, 'redis').message);
      this.opts.log.warn({ component: 'ui', err: (e as Error).message }, 'dashboard tick failed');
    } finally {
      this.ticking = false;
    }
  }

  /** Tells the page (its `redis` event, /api/state's `redis`) whether Redis answers. */
  private setRedisTrouble(why: string | undefined): void {
    if (why === this.redisTrouble) return;
    this.redisTrouble = why;
    this.hub.send('redis', { error: why ?? null });
  }

  /** A tick's reads of Redis (runs, queue depth, fleet limits, the breakers daemons publish) and what they change. */
  private async readRedis(): Promise<void> {
    const changed = (await this.runs?.tick()) ?? [];
    if (changed.length) this.hub.send('runs', changed);
    if (this.opts.depth) {
      this.queueDepth = await this.opts.depth();
      const q = JSON.stringify(this.queueDepth);
      if (q !== this.lastQueue) this.hub.send('queue', this.queueDepth, (this.lastQueue = q));
    }
    if (this.opts.redis) {
      this.fleetLimits = await fleetLimitViews(this.opts.redis);
      const f = JSON.stringify(this.fleetLimits);
      if (f !== this.lastFleets) this.hub.send('fleets', this.fleetLimits, (this.lastFleets = f));
    }
    if (this.opts.breakers) this.breakerStates = await this.opts.breakers();
    this.pushAgents(); // breaker states change between rounds
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const authed = gate(req, res, { token: this.token, open: this.open, hosts: this.hosts, trust: this.trust });
    if (!authed) return;
    const path = authed.url.pathname;
    const headers: Record<string, string> = { ...SECURITY_HEADERS };
    if (req.method === 'POST') return void this.post(path, req, res, headers);
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, headers).end();
    // Collection resumes with any request; those that answer with what it collected wait for it
    // to be fresh. An event stream gets the updates as they come.
    const fresh = this.asked();
    if (path === '/metrics') {
      fresh
        .then(() => this.exposition())
        .then(
          (body) => res.writeHead(200, { ...headers, 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body),
          () => res.writeHead(500, headers).end(),
        );
      return;
    }
    const fleets = requestedFleets(authed.url);
    if (path === '/events') return void this.hub.add(req, res, headers, () => this.snapshotEvents(), fleets && fleetsView(fleets));
    if (path === '/api/state')
      return void fresh.then(() => res.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify(this.snapshot(fleets))));
    const asset = this.assets.get(path === '/' ? '/index.html' : path);
    if (!asset) return void res.writeHead(404, headers).end();
    res.writeHead(200, { ...headers, 'content-type': asset.type }).end(asset.body);
  }

  /** The first events of a stream (unfiltered: the stream's view filters them). */
  private snapshotEvents(): Array<[string, unknown]> {
    const s = this.snapshot();
    return [
      ['agents', s.agents],
      ['runs', s.runs],
      ['queue', s.queue],
      ['fleets', s.fleets],
      ...(s.redis ? [['redis', s.redis] as [string, unknown]] : []),
      ['config', { scrapeIntervalMs: s.scrapeIntervalMs }],
    ];
  }

  private async post(path: string, req: IncomingMessage, res: ServerResponse, headers: Record<string, string>): Promise<void> {
    req.resume();
    const m = /^\/api\/runs\/([A-Za-z0-9_.]{1,40})\/cancel$/.exec(path);
    if (!m || !this.opts.redis || !this.runs) return void res.writeHead(404, headers).end();
    const runId = m[1] as string;
    if (!this.runs.has(runId)) return void res.writeHead(404, headers).end();
    try {
      // A click just after a Redis outage may find the connection still waiting out its backoff.
      const redis = this.opts.redis;
      // A Redis that hangs gets REDIS_ANSWER_MS: the SET may still land once it answers.
      await answered(
        whileAway(redis, () => requestCancel(redis, runId), { forMs: RECONNECT_MS, what: `cancelling run ${runId}` }),
        `cancelling run ${runId} (the cancel may still take effect once it answers)`,
      );
      this.opts.log.info({ component: 'ui', run: runId }, 'run cancel requested from the dashboard');
      res.writeHead(202, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify({ runId, cancel: 'requested' }));
    } catch (e) {
      res.writeHead(503, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify({ error: (e as Error).message }));
    }
  }

  /** Stops collecting, ends every event stream and closes the server. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.hub.close();
    await this.collector.stop();
    this.server.closeAllConnections?.();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
