/**
 * Runs the scheduler daemon on the configured Redis (or the embedded one), with the agent
 * connector built from the scheduler's certificate. What `gaxx scheduler` runs.
 */
import type { SecureContextOptions } from 'node:tls';
import { currentCredentials, secureContextOptions, type Credentials } from '../../certs/index.js';
import { isLoopbackHost, parseHostPort } from '../../proto/index.js';
import { agentConnector } from '../dispatch/connector.js';
import { SchedulerDaemon } from './daemon.js';
import { FleetReaper, type ReaperOptions } from './reaper.js';
import { redisTarget } from '../redis/embedded-redis.js';
import { CertRenewer, type RenewerOptions } from '../renewal/renewer.js';
import type { WorkerLog } from '../dispatch/worker.js';
import type { DaemonOptions } from './daemon.js';
import { clearDashboardUrl, writeDashboardMissing, writeDashboardUrl } from '../ui/url-file.js';

/**
 * How long after its last call to an agent the daemon keeps that connection up when the agent
 * closes it for idleness (AgentClientOptions.keepWarmMs): agents close a connection with no call
 * after 5 min, and a run that came after a quiet spell paid every one of its agents' TLS
 * handshakes at once (50 local agents on a 2-core machine: 0.4-0.9 s of the run). Past this, a
 * connection closed is left closed.
 */
export const KEEP_WARM_MS = 60 * 60 * 1000;

export interface ServeOptions {
  /** A Redis URL; none: the embedded redis-server of `stateDir`. */
  redisUrl?: string;
  /** Ends the wait for Redis to be ready at start (DaemonOptions.stop). */
  stop?: AbortSignal;
  /** Accept plaintext, password-less Redis beyond loopback (REDIS_INSECURE otherwise). */
  redisInsecure?: boolean;
  /** How long a request on its producer connections may go unanswered (RedisSettings.answerMs). */
  redisAnswerMs?: number;
  stateDir: string;
  /**
   * Scheduler-role client certificate (also serves non-loopback metrics over mTLS, with the one
   * in force at the start); a source is asked before every call to an agent, so a certificate
   * re-issued while the daemon runs is used from its next call on.
   */
  certs: Credentials;
  /** The agents' bearer token (GAXX_AGENT_TOKEN), when they require one. */
  agentToken?: string | undefined;
  concurrency?: number;
  /** Runs served at once (default MAX_RUNS, dispatch/run-discovery.ts). */
  maxRuns?: number;
  metricsListen?: string;
  /** What to do when something already listens on `metricsListen`. */
  metricsInUse?: string;
  lockDurationMs?: number;
  /** Deadline of unary agent calls, and how long a call waits for a connection. */
  agentDeadlineMs?: number;
  agentConnectTimeoutMs?: number;
  /** Agent certificate renewal (scheduler/renewer.ts); absent or interval 0: off. */
  renewal?: { intervalMs: number; caDir: string; operatorCertDir: string; holdFleet?: RenewerOptions['holdFleet'] };
  /** Ends fleets past their TTL or budget (daemon/reaper.ts); absent: off. */
  reaper?: Pick<ReaperOptions, 'reap' | 'ownLimits' | 'intervalMs'>;
  /** The dashboard (scheduler/ui); its URL with the token is left in `<stateDir>/ui` for `gaxx ui`. */
  ui?: DaemonOptions['ui'];
  log: WorkerLog;
}

/** A running scheduler and how to stop it (drain, then release the embedded Redis). */
export interface Served {
  daemon: SchedulerDaemon;
  /** The certificate renewal loop, when on. */
  renewer: CertRenewer | undefined;
  /** The fleet TTL/budget reaper, when on. */
  reaper: FleetReaper | undefined;
  stop(graceMs?: number): Promise<void>;
}

export async function serveScheduler(opts: ServeOptions): Promise<Served> {
  const target = await redisTarget(opts.redisUrl, opts.stateDir, {
    allowInsecure: opts.redisInsecure ?? false,
    stop: opts.stop,
    ...(opts.redisAnswerMs === undefined ? {} : { answerMs: opts.redisAnswerMs }),
  });
  try {
    const metricsTls: SecureContextOptions = secureContextOptions(await currentCredentials(opts.certs));
    const daemon = await SchedulerDaemon.start({
      settings: target.settings,
      stop: opts.stop,
      connect: agentConnector(opts.certs, {
        deadlineMs: opts.agentDeadlineMs,
        connectTimeoutMs: opts.agentConnectTimeoutMs,
        token: opts.agentToken,
        keepWarmMs: KEEP_WARM_MS,
      }),
      concurrency: opts.concurrency,
      maxRuns: opts.maxRuns,
      metricsListen: opts.metricsListen,
      metricsInUse: opts.metricsInUse,
      metricsTls:
        opts.metricsListen && !isLoopbackHost(parseHostPort(opts.metricsListen, { allowPortZero: true, what: 'metrics address' }).host)
          ? metricsTls
          : undefined,
      lockDurationMs: opts.lockDurationMs,
      ui: opts.ui,
      log: opts.log,
    });
    if (daemon.dashboard) writeDashboardUrl(opts.stateDir, daemon.dashboard.url);
    else if (daemon.dashboardError) writeDashboardMissing(opts.stateDir, daemon.dashboardError);
    const renewer = opts.renewal
      ? CertRenewer.start({
          ...opts.renewal,
          token: opts.agentToken,
          redis: daemon.queue.redis,
          schedulerCreds: opts.certs,
          registry: daemon.metrics.registry,
          log: opts.log,
        })
      : undefined;
    const reaper = opts.reaper ? FleetReaper.start({ ...opts.reaper, redis: daemon.queue.redis, log: opts.log }) : undefined;
    return {
      daemon,
      renewer,
      reaper,
      stop: async (graceMs) => {
        await reaper?.stop();
        await renewer?.stop();
        if (daemon.dashboard || daemon.dashboardError) clearDashboardUrl(opts.stateDir);
        await daemon.stop(graceMs);
        await target.release();
      },
    };
  } catch (e) {
    await target.release();
    throw e;
  }
}
