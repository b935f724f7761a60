/**
 * `gaxx scheduler`: the scheduler daemon, until SIGTERM or Ctrl-C. Its settings (concurrency,
 * metrics address, drain, lock, renewal interval) come from the installation's one config
 * (cli/config.ts): defaults < config file < GAXX_SCHEDULER_* < flags.
 */
import { pino } from 'pino';
import { exitCodeFor, fdLogDestination, isGaxxError } from '../../proto/index.js';
import { serveScheduler } from '../../scheduler/index.js';
import { stringFlag, type Command } from '../command.js';
import { scopedFlags } from '../config.js';
import { ownFleetLimits } from '../fleet/fleet-directory.js';
import { lockFleet } from '../fleet/fleet-lock.js';
import { monitorCredentialSource, schedulerCredentialSource } from '../scheduler-credentials.js';
import { readFleet } from '../state.js';

/** What to do about a listen address of the daemon's that something already listens on. */
function inUse(who: string, flag: string, env: string, what: string): string {
  return `is ${who} serving it? Pick another address with ${flag} (or ${env}; 127.0.0.1:0 picks any free port), or serve no ${what} with ${flag} ''`;
}

export const command: Command = {
  usage:
    'gaxx scheduler [--concurrency N] [--max-runs N] [--metrics-listen ADDR] [--ui-listen ADDR] [--drain D] [--lock D] [--reap-interval D] [--renew-interval D] [--certs DIR] [--ca-dir DIR] [--operator-certs DIR]',
  description: [
    "Runs the scheduler daemon: workers that take every fleet's tasks from the Redis queue and",
    'dispatch them to the agents, a heartbeat (so `gaxx run` leaves the work to it), and',
    'Prometheus metrics on --metrics-listen (default 127.0.0.1:9092; any address but localhost',
    'and loopback ones, a host name too, is served over mTLS with the scheduler certificate).',
    'Several schedulers on one Redis share the',
    "work. At its start it connects to the registered fleets' agents (closed after 5 min when no",
    'run used them). Connections to agents are kept up for an hour after their last call (agents',
    'close idle ones after 5 min: they are opened again at once). A cancelled run (Ctrl-C in',
    '`gaxx run`) has its running tasks stopped on the agents.',
    'Redis: the global --redis-url / GAXX_REDIS_URL, else the embedded redis-server of the state',
    'dir. SIGTERM, SIGHUP or Ctrl-C drains: no new tasks; in-flight ones get --drain to finish, the',
    'rest are handed back to the queue (the agents keep running them for the next scheduler).',
    "It also renews the certificates of registered fleets' agents that report renewal as due,",
    'with the local CA and the operator certificate (only the operator role may write an',
    "agent's cert area). A fleet given a TTL or budget (recorded in its state file, and in Redis",
    'for the schedulers) is deleted through its provider once the TTL in its state passes or its',
    'cost reaches the budget there (checked every --reap-interval; one scheduler deletes it; a',
    'failed delete is tried again; limits found only in Redis, or differing there, delete',
    'nothing and are logged). Every',
    'flag has a GAXX_SCHEDULER_* variable and a `scheduler` key in',
    'the config file. Logs are JSON lines on stderr (--log-level). It also collects the registered',
    "fleets' agent metrics while someone watches and serves the dashboard and their /metrics on",
    '--ui-listen (default 127.0.0.1:9090; localhost or a loopback address only, never another host',
    'name, which DNS resolves; `gaxx ui` prints its URL with the token).',
    "Its own certificates are judged by the CA's current revocation list before each call to an",
    'agent: a local one revoked (gaxx certs revoke) or due is issued anew and used from then on,',
    'with a warning in the log; a revoked --certs DIR is logged as an error saying what to do, and',
    'new files put in DIR are used from the next call.',
  ].join('\n'),
  flags: {
    ...scopedFlags('scheduler'),
    certs: {
      type: 'string',
      valueName: 'DIR',
      help: 'scheduler certificate dir, loaded again when its cert.pem is replaced (default: issued from the local CA into the state dir, anew when revoked or due)',
    },
    'ca-dir': { type: 'string', valueName: 'DIR', help: 'the CA that renews agent certificates (default <config>/ca)' },
    'operator-certs': { type: 'string', valueName: 'DIR', help: 'the operator certificate that pushes renewed certificates (default <config>/operator)' },
  },
  handlesInterrupt: true,
  interruptNote: 'draining: no new tasks; in-flight ones get --drain to finish',
  examples: [
    'gaxx scheduler',
    'gaxx scheduler --concurrency 128 --metrics-listen 127.0.0.1:9200',
    'GAXX_SCHEDULER_DRAIN=30s gaxx scheduler --renew-interval 0',
  ],
  async run({ flags, config, signal }) {
    // A stderr that cannot take the logs (a full disk, /dev/full) drops them: the daemon goes on,
    // hears its signals, and its exit code says it (log-destination.ts).
    const logTo = fdLogDestination(2);
    const log = pino({ level: config.logLevel, base: { component: 'scheduler' } }, logTo);
    const s = config.scheduler;
    const renewal = {
      intervalMs: s.renewIntervalMs,
      caDir: stringFlag(flags, 'ca-dir') ?? config.paths.caDir,
      operatorCertDir: stringFlag(flags, 'operator-certs') ?? config.paths.operatorCertDir,
      // A fleet another command holds (its spawn, delete, a gaxx certs rotate) is renewed in a later round.
      holdFleet: (fleet: string) => {
        try {
          return lockFleet(config.paths.fleetsDir, fleet, 'scheduler (certificate renewal)');
        } catch (e) {
          if (isGaxxError(e, 'FAILED_PRECONDITION')) return { held: e.message };
          // A fleet this machine keeps no state of, or a fleets dir it cannot write: renewed as before.
          return { release: () => undefined };
        }
      },
    };
    // Asked again before every call to an agent: a certificate revoked (or renewed) while the
    // daemon runs is replaced without a restart (a local one re-issued, a --certs DIR reloaded).
    const notes = { note: (text: string) => log.warn({}, text), error: (text: string) => log.error({}, text), caDir: renewal.caDir };
    const creds = await schedulerCredentialSource(config.paths, { ...notes, dir: stringFlag(flags, 'certs') });
    // The dashboard asks agents with a monitor certificate; without a local CA to issue one,
    // with the scheduler's (which may read the same).
    const monitor = s.uiListen
      ? await monitorCredentialSource(config.paths, notes).catch((e: unknown) => (isGaxxError(e, 'NOT_FOUND') ? creds : Promise.reject(e)))
      : undefined;
    const served = await serveScheduler({
      redisUrl: config.redis.url,
      stop: signal,
      redisInsecure: config.redis.insecure,
      redisAnswerMs: config.redis.timeoutMs,
      stateDir: config.paths.stateDir,
      certs: creds,
      agentToken: config.agent.token,
      concurrency: s.concurrency,
      maxRuns: s.maxRuns,
      metricsListen: s.metricsListen,
      metricsInUse: inUse('another gaxx scheduler', '--metrics-listen', 'GAXX_SCHEDULER_METRICS_LISTEN', 'metrics'),
      lockDurationMs: s.lockMs,
      agentDeadlineMs: config.agent.deadlineMs,
      agentConnectTimeoutMs: config.agent.connectTimeoutMs,
      renewal,
      // Fleets given a TTL or budget are deleted through their provider when they reach it.
      ...(s.reapIntervalMs > 0
        ? {
            reaper: {
              intervalMs: s.reapIntervalMs,
              // What decides: the limits the fleet's state records (Redis's copy may be anyone's).
              ownLimits: (fleet: string) => {
                const state = readFleet(config.paths.fleetsDir, fleet);
                return state && ownFleetLimits(state);
              },
              reap: async (fleet: string) => {
                const { reapFleet } = await import('./delete.js');
                await reapFleet(config, fleet);
              },
            },
          }
        : {}),
      ...(monitor
        ? {
            ui: {
              listen: s.uiListen,
              inUse: inUse("another scheduler's or a gaxx ui's dashboard", '--ui-listen', 'GAXX_SCHEDULER_UI_LISTEN', 'dashboard'),
              creds: monitor,
            },
          }
        : {}),
      log,
    });
    // Ctrl-C, and SIGTERM from a service manager, drain (main.ts aborts `signal` on either).
    if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await served.stop(s.drainMs);
    return logTo.failed ? exitCodeFor('FILE_ACCESS') : 0;
  },
};
