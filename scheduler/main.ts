#!/usr/bin/env node
/**
 * gaxx-scheduler: the scheduler daemon as its own process (the same daemon `gaxx scheduler`
 * runs). Flags over env: --redis-url (GAXX_REDIS_URL; none: the embedded redis-server of the
 * state dir), --state-dir (GAXX_STATE_DIR, else $GAXX_HOME/state), --certs (GAXX_SCHEDULER_CERTS:
 * a scheduler-role cert dir), --concurrency, --metrics-listen (GAXX_SCHEDULER_METRICS_LISTEN),
 * --lock-ms, --drain-ms. Logs pino JSON to stderr; SIGTERM/SIGINT drain and exit 0.
 */
import { parseArgs } from 'node:util';
import { destination, pino } from 'pino';
import { loadCertDir } from '../certs/index.js';
import { exitCodeFor, isGaxxError } from '../proto/index.js';
import { renewalSettings } from './renewer.js';
import { serveScheduler } from './serve.js';

const log = pino({ base: { component: 'scheduler' } }, destination(2));

async function main(): Promise<void> {
  const { values } = parseArgs({
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
    },
  });
  const env = process.env;
  const stateDir = values['state-dir'] ?? env.GAXX_STATE_DIR ?? (env.GAXX_HOME ? `${env.GAXX_HOME}/state` : `${env.HOME ?? '/root'}/.local/state/gaxx`);
  const certsDir = values.certs ?? env.GAXX_SCHEDULER_CERTS ?? `${stateDir}/scheduler-certs`;
  const num = (v: string | undefined, d: number): number => (v === undefined ? d : Number(v));
  const served = await serveScheduler({
    redisUrl: values['redis-url'] ?? env.GAXX_REDIS_URL,
    stateDir,
    certs: loadCertDir(certsDir),
    concurrency: num(values.concurrency, 64),
    metricsListen: values['metrics-listen'] ?? env.GAXX_SCHEDULER_METRICS_LISTEN ?? '127.0.0.1:9092',
    lockDurationMs: num(values['lock-ms'], 30_000),
    renewal: renewalSettings(values, env),
    log,
  });
  const drainMs = num(values['drain-ms'], 10_000);
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
