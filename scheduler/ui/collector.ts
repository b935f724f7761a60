/**
 * The collector: every interval, each watched agent's `/metrics` (HTTPS with the monitor
 * certificate, the agent's identity pinned as the scheduler pins it) and its Info RPC. A failed
 * scrape is a state (`up` 0 with the reason), never an exception: one dead or hostile agent
 * costs one slot of the round and nothing else. Rounds never overlap and every call has a
 * deadline shorter than the interval.
 */
import type { Agent as HttpsAgent } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { currentCredentials, revokedPeerSerials, sharedSecureContext, type CertBundle, type Credentials } from '../../certs/index.js';
import { isGaxxError, nodeHttps } from '../../proto/index.js';
import { AgentClient, checkAgentCertificate, splitAddress, type AgentExpectation } from '../client/index.js';
import { parsePrometheusText, type Family } from './prom-text.js';
import type { MonitorTarget } from './targets.js';

/** Largest scrape body read (an agent's exposition is a few KiB). */
const MAX_SCRAPE_BYTES = 4 * 1024 * 1024;

/** What the Info RPC said, in the page's units. */
export interface AgentInfo {
  version: string;
  uid: number;
  capacity: number;
  running: number;
  load: number[];
  certNotAfterMs: number;
  certRenewalDue: boolean;
  environment: string;
  uptimeMs: number;
  tasksStarted: number;
  blockedPeers: Array<{ address: string; untilMs: number; reason: string }>;
}

/** The latest view of one agent. */
export interface AgentState extends MonitorTarget {
  /** Info answered in the last round. */
  reachable: boolean;
  /** /metrics answered in the last round. */
  metricsUp: boolean;
  /** Why the last Info or scrape failed. */
  error?: string;
  /** The GaxxError code of the Info failure, else of the scrape's (e.g. IDENTITY_MISMATCH). */
  errorCode?: string;
  info?: AgentInfo;
  families?: Map<string, Family>;
  scrapeMs: number;
  invalidLines: number;
  /** When this agent was last looked at (ms since epoch). */
  at: number;
}

export interface CollectorOptions {
  /** The monitor certificate; a source is asked before every round (a re-issued one closes the links made with the old). */
  creds: Credentials;
  /** The agents to watch, asked again before every round (fleets change). */
  targets: () => Promise<MonitorTarget[]>;
  intervalMs?: number;
  /** Agents looked at in parallel (default 64). */
  parallel?: number;
  /** Called after each round. */
  onRound?: (states: AgentState[]) => void;
  onError?: (e: Error) => void;
  /**
   * Whether anyone still wants the rounds, asked as each round ends (default: always): while it
   * says no, no round is scheduled (the collector idles, its connections kept) until wake().
   */
  wanted?: () => boolean;
}

const expectOf = (t: MonitorTarget): AgentExpectation | undefined => (t.fleet ? { fleet: t.fleet, host: t.host } : undefined);

/**
 * What the collector keeps open to one agent: its Info client and an HTTPS pool of one
 * connection for its scrapes, both pinned to the identity the target names. Keyed by identity
 * and addresses (linkKey): a host that moved or was renamed gets new connections, never an old
 * one whose identity check was made for another target.
 */
interface Link {
  client: AgentClient | undefined;
  https: HttpsAgent;
}

const linkKey = (t: MonitorTarget): string => `${keyOf(t)}@${t.address}|${t.metricsAddress}`;

/** Scrapes and asks agents at an interval. */
export class Collector {
  readonly states = new Map<string, AgentState>();
  private readonly links = new Map<string, Link>();
  private newScrapeConnections = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** No round scheduled: the last one ended with nobody wanting more (CollectorOptions.wanted). */
  private idle = false;
  /** The round the last wake() started (settled once it ended). */
  private woken: Promise<void> | undefined;
  private rounds = 0;
  readonly intervalMs: number;
  /** The certificate this round's links were made with. */
  private creds: CertBundle | undefined;

  constructor(private readonly opts: CollectorOptions) {
    this.intervalMs = opts.intervalMs ?? 5000;
  }

  /** The bundle of this round's calls (set by round() before any is made). */
  private get bundle(): CertBundle {
    if (!this.creds) throw new Error('collector: no credentials before the first round');
    return this.creds;
  }

  /**
   * Scrape connections opened so far. An agent keeps an idle scrape connection longer than an
   * interval (METRICS_KEEP_ALIVE_MS), so rounds after the first open none for agents that stay.
   */
  get scrapeConnections(): number {
    return this.newScrapeConnections;
  }

  private link(t: MonitorTarget): Link {
    const k = linkKey(t);
    let l = this.links.get(k);
    if (!l) {
      // One TLS context for every connection made with these credentials (built once).
      l = { client: undefined, https: new (nodeHttps().Agent)({ secureContext: sharedSecureContext(this.bundle), keepAlive: true, maxSockets: 1 }) };
      this.links.set(k, l);
    }
    return l;
  }

  private static close(l: Link): void {
    l.client?.close();
    l.https.destroy();
  }

  /** Runs a first round now, then one per interval, while wanted (CollectorOptions.wanted); else idles until wake(). */
  start(): void {
    if (this.opts.wanted?.() === false) this.idle = true;
    else this.tick();
  }

  private tick(): void {
    if (this.stopped) return;
    this.running = this.round()
      .then(() => undefined)
      .catch((e: Error) => this.opts.onError?.(e))
      .finally(() => {
        if (this.stopped) return;
        if (this.opts.wanted?.() === false) this.idle = true;
        else this.timer = setTimeout(() => this.tick(), this.intervalMs);
      });
  }

  /** Whether the collector idles: its states are those of its last round, however old. */
  get idling(): boolean {
    return this.idle;
  }

  /**
   * Rounds again at once when the collector idles, and resolves when that round has ended (its
   * calls have deadlines), for every caller that comes while it runs; at once when rounds went
   * on anyway (their states are at most an interval old) or it has stopped.
   */
  async wake(): Promise<void> {
    if (this.idle && !this.stopped) {
      this.idle = false;
      this.tick();
      this.woken = this.running;
    }
    await this.woken;
  }

  /** One round over every target; resolves when all answered or timed out. */
  async round(): Promise<AgentState[]> {
    // A certificate replaced since the last round (revoked and re-issued, renewed): agents refuse
    // a revoked one on open connections too, so every link made with the old one goes.
    const creds = await currentCredentials(this.opts.creds);
    if (creds !== this.creds) {
      for (const l of this.links.values()) Collector.close(l);
      this.links.clear();
      this.creds = creds;
    }
    const targets = await this.opts.targets();
    const keys = new Set(targets.map(keyOf));
    const links = new Set(targets.map(linkKey));
    for (const [k, l] of this.links) {
      if (links.has(k)) continue;
      Collector.close(l);
      this.links.delete(k);
    }
    for (const k of this.states.keys()) if (!keys.has(k)) this.states.delete(k);
    let next = 0;
    let seen = 0;
    // The first round of a large fleet takes a while: show agents as they answer.
    const first = this.rounds++ === 0;
    const worker = async (): Promise<void> => {
      while (next < targets.length && !this.stopped) {
        const t = targets[next++] as MonitorTarget;
        this.states.set(keyOf(t), await this.look(t));
        if (first && ++seen % 50 === 0) this.opts.onRound?.([...this.states.values()]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.parallel ?? 64, targets.length) }, worker));
    const states = [...this.states.values()];
    this.opts.onRound?.(states);
    return states;
  }

  private async look(t: MonitorTarget): Promise<AgentState> {
    const deadline = Math.max(500, Math.min(4000, this.intervalMs - 100));
    const t0 = Date.now();
    // A target that cannot even be asked is that target's failure, not the round's.
    const [info, scrape] = await Promise.allSettled([this.info(t, deadline), Promise.resolve().then(() => this.scrape(t, deadline))]);
    const state: AgentState = {
      ...t,
      reachable: info.status === 'fulfilled',
      metricsUp: scrape.status === 'fulfilled',
      scrapeMs: Date.now() - t0,
      invalidLines: 0,
      at: Date.now(),
    };
    if (info.status === 'fulfilled') state.info = info.value;
    if (scrape.status === 'fulfilled') {
      const parsed = parsePrometheusText(scrape.value);
      state.families = parsed.families;
      state.invalidLines = parsed.invalid;
    }
    const failed = [info, scrape].find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      state.error = (failed.reason as Error).message;
      if (isGaxxError(failed.reason)) state.errorCode = failed.reason.code;
    }
    return state;
  }

  private async info(t: MonitorTarget, deadlineMs: number): Promise<AgentInfo> {
    const l = this.link(t);
    if (!l.client) {
      const expect = expectOf(t);
      l.client = AgentClient.connect({ address: t.address, ...(expect ? { expect } : {}) }, this.bundle, { deadlineMs, connectTimeoutMs: deadlineMs });
    }
    const r = await l.client.info();
    return {
      version: r.version,
      uid: r.uid,
      capacity: r.capacity,
      running: r.runningTasks,
      load: r.loadAverage,
      certNotAfterMs: Number(r.certNotAfterUnixMs),
      certRenewalDue: r.certRenewalDue,
      environment: r.environment,
      uptimeMs: Number(r.uptimeMs),
      tasksStarted: Number(r.tasksStartedTotal),
      blockedPeers: r.blockedPeers.map((b) => ({ address: b.address, untilMs: Number(b.untilUnixMs), reason: b.reason })),
    };
  }

  private scrape(t: MonitorTarget, deadlineMs: number): Promise<string> {
    const { host, port } = splitAddress(t.metricsAddress);
    return new Promise((resolve, reject) => {
      const req = nodeHttps().request(
        {
          host,
          port,
          path: '/metrics',
          agent: this.link(t).https,
          timeout: deadlineMs,
          checkServerIdentity: (_name: string, cert: PeerCertificate) => checkAgentCertificate(host, cert, expectOf(t), revokedPeerSerials(this.bundle)),
        },
        (res) => {
          const parts: Buffer[] = [];
          let size = 0;
          res.on('data', (b: Buffer) => {
            size += b.length;
            if (size > MAX_SCRAPE_BYTES) req.destroy(new Error(`metrics of ${t.metricsAddress} exceed ${MAX_SCRAPE_BYTES} bytes`));
            else parts.push(b);
          });
          res.on('end', () =>
            res.statusCode === 200 ? resolve(Buffer.concat(parts).toString()) : reject(new Error(`metrics of ${t.metricsAddress} answered ${res.statusCode}`)),
          );
          res.on('error', reject);
        },
      );
      req.once('socket', () => {
        if (!req.reusedSocket) this.newScrapeConnections += 1;
      });
      req.on('timeout', () => req.destroy(new Error(`metrics of ${t.metricsAddress}: no answer within ${deadlineMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  /** Stops the rounds and closes every connection. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    for (const l of this.links.values()) Collector.close(l);
    this.links.clear();
  }
}

/** The key of an agent in the collector's maps. */
export const keyOf = (t: Pick<MonitorTarget, 'fleet' | 'host'>): string => `${t.fleet}/${t.host}`;
