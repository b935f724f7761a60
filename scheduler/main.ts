#!/usr/bin/env node
/**
 * gaxx-scheduler: the scheduler daemon as its own process (the same daemon `gaxx scheduler`
 * runs). Flags over env (see HELP). Logs pino JSON to stderr; SIGTERM/SIGINT drain and exit 0.
 */
import { parseArgs } from 'node:util';
import { destination, pino } from 'pino';
import { loadCertDir } from '../certs/index.js';
import { exitCodeFor, GaxxError, isGaxxError } from '../proto/index.js';
import { renewalSettings } from './renewal/renewer.js';
import { serveScheduler } from './daemon/serve.js';

const HELP = `Usage: node dist/scheduler/main.js [flags]

The gaxx scheduler daemon (what \`gaxx scheduler\` runs): takes every fleet's tasks from the
Redis queue and dispatches them to the agents over mTLS, publishes a heartbeat (so \`gaxx run\`
leaves the work to it), honours run cancels, and serves Prometheus metrics. SIGTERM or SIGINT
drains: no new tasks; in-flight ones get --drain-ms to finish, the rest are handed back.
Logs are JSON lines on stderr.

Flags (environment variable in parentheses; flags win):
  --redis-url URL        Redis to use (GAXX_REDIS_URL); default: the embedded redis-server
                         of the state dir (unix socket, no TCP port)
  --state-dir DIR        state dir (GAXX_STATE_DIR); default $GAXX_HOME/state, else
                         ~/.local/state/gaxx
  --certs DIR            scheduler-role certificate dir: cert.pem, key.pem (0600), ca.pem
                         (GAXX_SCHEDULER_CERTS); default <state-dir>/scheduler/certs
  --concurrency N        tasks in flight at once (default 64)
  --metrics-listen ADDR  host:port for /metrics, empty to disable
                         (GAXX_SCHEDULER_METRICS_LISTEN; default 127.0.0.1:9092); a
                         non-loopback address is served over mTLS with the scheduler certificate
  --lock-ms N            job lock: a dead scheduler's tasks are taken again after about this
                         long (default 30000)
  --drain-ms N           on shutdown, how long in-flight tasks may finish before being handed
                         back (default 10000)
  --renew-interval D     renew the due certificates of registered fleets' agents every D
                         (jittered): 30s, 10m, 1h; 0 off (GAXX_SCHEDULER_RENEW_INTERVAL;
                         default 10m)
  --ca-dir DIR           the CA that renews them (default <config>/ca)
  --operator-certs DIR   the operator certificate that pushes them, since only the operator
                         role may write an agent's cert area (default <config>/operator)
  -h, --help             print this help

Exit codes: 0 after a drain; 2 bad flags; others as gaxx's error codes (see gaxx --help).
`;

const log = pino({ base: { component: 'scheduler' } }, destination(2));

function usage(message: string): GaxxError {
  return new GaxxError('USAGE', `${message} (see --help)`);
}

function parseFlags(): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({
      options: {
        'redis-url': { type: 'string' },
        'state-dir': { type: 'string' },
        certs: { type: 'string' },
        concurrency: { type: 'string' },
        'metrics-listen': { type: 'string' },
        'lock-ms': { type: 'string' },
        'drain-ms': { type: 'string' },
        // Agent certificate renewal: see renewalSettings (scheduler/renewer.ts).
        'renew-interval': { type: 'string' },
        'ca-dir': { type: 'string' },
        'operator-certs': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    throw usage((e as Error).message);
  }
}

/** A positive integer flag, or its default. */
function positive(values: Record<string, unknown>, name: string, dflt: number): number {
  const v = values[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!(Number.isInteger(n) && n > 0)) throw usage(`--${name} must be a positive integer`);
  return n;
}

async function main(): Promise<void> {
  const values = parseFlags();
  if (values.help === true) {
    process.stdout.write(HELP);
    return;
  }
  const str = (name: string): string | undefined => (typeof values[name] === 'string' ? values[name] : undefined);
  const env = process.env;
  const stateDir = str('state-dir') ?? env.GAXX_STATE_DIR ?? (env.GAXX_HOME ? `${env.GAXX_HOME}/state` : `${env.HOME ?? '/root'}/.local/state/gaxx`);
  const certsDir = str('certs') ?? env.GAXX_SCHEDULER_CERTS ?? `${stateDir}/scheduler/certs`;
  const concurrency = positive(values, 'concurrency', 64);
  const lockDurationMs = positive(values, 'lock-ms', 30_000);
  const drainMs = positive(values, 'drain-ms', 10_000);
  const served = await serveScheduler({
    redisUrl: str('redis-url') ?? env.GAXX_REDIS_URL,
    stateDir,
    certs: loadCertDir(certsDir),
    agentToken: env.GAXX_AGENT_TOKEN || undefined,
    concurrency,
    metricsListen: str('metrics-listen') ?? env.GAXX_SCHEDULER_METRICS_LISTEN ?? '127.0.0.1:9092',
    lockDurationMs,
    renewal: renewalSettings(values, env),
    log,
  });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    served.stop(drainMs).then(
      () => process.exit(0),
      (e: Error) => {
        log.error({ err: e.message }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e: unknown) => {
  log.error({ code: isGaxxError(e) ? e.code : 'INTERNAL', err: (e as Error).message }, 'scheduler failed');
  process.exit(isGaxxError(e) ? exitCodeFor(e.code) : 70);
});
