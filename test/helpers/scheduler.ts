/**
 * Runs the built scheduler daemon (`gaxx scheduler`, started by cli.ts like every CLI run) as its own process,
 * so tests can kill -9 it. Waits for its "scheduler started" log line; every process is tracked and
 * stopped by stopAllSchedulers() (in afterAll, or afterEach where each test starts its own).
 */
import { spawnGaxx, type GaxxProcess } from './cli.js';

export interface SchedulerProcessOptions {
  redisUrl?: string;
  stateDir: string;
  certsDir: string;
  concurrency?: number;
  lockMs?: number;
  drainMs?: number;
  /** Default 127.0.0.1:0 (port in started.metrics). */
  metricsListen?: string;
  /** Extra flags after the others (e.g. --renew-interval 1s). */
  args?: string[];
}

export interface SchedulerProcess {
  pid: number;
  /** The "scheduler started" log line. */
  started: Record<string, unknown>;
  kill(signal?: NodeJS.Signals): void;
  exited: Promise<number | null>;
  stderr(): string;
}

const live = new Set<GaxxProcess>();

/** Starts a scheduler process (45 s at most to come up: a loaded machine starts slowly). */
export async function startSchedulerProcess(o: SchedulerProcessOptions): Promise<SchedulerProcess> {
  const args = [
    'scheduler',
    '--state-dir',
    o.stateDir,
    '--certs',
    o.certsDir,
    '--metrics-listen',
    o.metricsListen ?? '127.0.0.1:0',
    '--ui-listen',
    '127.0.0.1:0',
  ];
  if (o.redisUrl) args.push('--redis-url', o.redisUrl);
  if (o.concurrency) args.push('--concurrency', String(o.concurrency));
  if (o.lockMs) args.push('--lock', `${o.lockMs}ms`);
  if (o.drainMs) args.push('--drain', `${o.drainMs}ms`);
  if (o.args) args.push(...o.args);
  const proc = spawnGaxx(args);
  live.add(proc);
  const exited = proc.done.then((r) => {
    live.delete(proc);
    return r.code;
  });
  const started = JSON.parse(await proc.line('stderr', (l) => l.includes('"scheduler started"'), 45_000)) as Record<string, unknown>;
  return { pid: proc.pid, started, kill: (s = 'SIGKILL') => proc.kill(s), exited, stderr: () => proc.stderr() };
}

/** SIGKILLs every scheduler process still running (afterAll). */
export async function stopAllSchedulers(): Promise<void> {
  const all = [...live];
  for (const p of all) p.kill('SIGKILL');
  await Promise.all(all.map((p) => p.done));
}
