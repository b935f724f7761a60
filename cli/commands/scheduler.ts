/** `gaxx scheduler [--concurrency N]`: the scheduler daemon, until SIGTERM or Ctrl-C. */
import { GaxxError } from '../../proto/index.js';
import { renewalSettings, serveScheduler, type WorkerLog } from '../../scheduler/index.js';
import { stringFlag, type Command, type FlagValues } from '../command.js';
import type { Output } from '../output.js';
import { schedulerCredentials } from '../scheduler-credentials.js';

function positive(flags: FlagValues, name: string, dflt: number): number {
  const raw = stringFlag(flags, name);
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!(Number.isInteger(n) && n > 0)) throw new GaxxError('USAGE', `--${name} must be a positive integer (see 'gaxx scheduler --help')`);
  return n;
}

/** JSON log lines on stderr, as the daemons log. */
function jsonLog(out: Output): WorkerLog {
  const line = (level: string) => (obj: object, msg?: string) => out.note(JSON.stringify({ level, time: Date.now(), component: 'scheduler', ...obj, msg }));
  return { info: line('info'), warn: line('warn'), error: line('error') };
}

export const command: Command = {
  usage: 'gaxx scheduler [--concurrency N] [--metrics-listen ADDR] [--certs DIR] [--drain-ms N] [--renew-interval D]',
  description: [
    'Runs the scheduler daemon: workers that take every fleet\'s tasks from the Redis queue and',
    'dispatch them to the agents, a heartbeat (so `gaxx run` leaves the work to it), and',
    'Prometheus metrics on --metrics-listen (default 127.0.0.1:9092; a non-loopback address is',
    'served over mTLS with the scheduler certificate). Several schedulers on one Redis share the',
    'work. A cancelled run (Ctrl-C in `gaxx run`) has its running tasks stopped on the agents.',
    'Redis: the global --redis-url / GAXX_REDIS_URL, else the embedded redis-server of the state',
    'dir. SIGTERM or Ctrl-C drains: no new tasks; in-flight ones get --drain-ms to finish, the',
    'rest are handed back to the queue (the agents keep running them for the next scheduler).',
    'The same daemon runs as `node dist/scheduler/main.js` (see its --help).',
  ].join('\n'),
  flags: {
    concurrency: { type: 'string', valueName: 'N', help: 'tasks in flight at once (default 64)' },
    'metrics-listen': { type: 'string', valueName: 'ADDR', help: 'host:port for /metrics; empty to disable (default 127.0.0.1:9092)' },
    certs: { type: 'string', valueName: 'DIR', help: 'scheduler certificate dir (default: issued from the local CA into the state dir)' },
    'drain-ms': { type: 'string', valueName: 'N', help: 'how long in-flight tasks may finish on shutdown before being handed back (default 10000)' },
    'renew-interval': { type: 'string', valueName: 'D', help: 'renew the due certificates of registered fleets\' agents every D (jittered) with the local CA and operator certificate: 30s, 10m, 1h; 0 off (default 10m)' },
  },
  handlesInterrupt: true,
  examples: ['gaxx scheduler', 'gaxx scheduler --concurrency 128 --metrics-listen 127.0.0.1:9200'],
  async run({ flags, config, out, signal }) {
    const concurrency = positive(flags, 'concurrency', 64);
    const drainMs = positive(flags, 'drain-ms', 10_000);
    // The same parsing as the daemon process's; CA and operator certificate from this installation.
    const renewal = { ...renewalSettings({ 'renew-interval': stringFlag(flags, 'renew-interval') }, {}), caDir: config.paths.caDir, operatorCertDir: config.paths.operatorCertDir };
    const creds = await schedulerCredentials(config.paths, stringFlag(flags, 'certs'));
    const served = await serveScheduler({
      redisUrl: config.redis.url,
      stateDir: config.paths.stateDir,
      certs: creds,
      agentToken: config.agent.token,
      concurrency,
      metricsListen: stringFlag(flags, 'metrics-listen') ?? '127.0.0.1:9092',
      renewal,
      log: jsonLog(out),
    });
    // SIGTERM (service managers) drains like Ctrl-C does.
    const term = new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
    const interrupted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await Promise.race([term, interrupted]);
    await served.stop(drainMs);
    return 0;
  },
};
