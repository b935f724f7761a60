/**
 * Runs the built scheduler daemon (`gaxx scheduler`, the CLI the tests run: see cli.ts) as its own process,
 * so tests can kill -9 it. Waits for its "scheduler started" log line; every process is tracked and
 * stopped by stopAllSchedulers() in afterAll.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI_MAIN } from './cli.js';

export { CLI_MAIN };

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

const live = new Set<ChildProcess>();

/** Starts a scheduler process (45 s at most to come up: a loaded machine starts slowly). */
export async function startSchedulerProcess(o: SchedulerProcessOptions): Promise<SchedulerProcess> {
  const args = [
    CLI_MAIN,
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
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  let text = '';
  child.stderr?.on('data', (b: Buffer) => (text += b.toString()));
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code) => {
      live.delete(child);
      r(code);
    }),
  );
  const started = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`scheduler did not start in 45 s: ${text}`)), 45_000);
    const check = (): void => {
      const l = text.split('\n').find((s) => s.includes('"scheduler started"'));
      if (l) {
        clearTimeout(timer);
        resolve(JSON.parse(l) as Record<string, unknown>);
      }
    };
    child.stderr?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`scheduler exited with ${code}: ${text}`));
    });
  });
  return { pid: child.pid as number, started, kill: (s = 'SIGKILL') => child.kill(s), exited, stderr: () => text };
}

/** SIGKILLs every scheduler process still running (afterAll). */
export async function stopAllSchedulers(): Promise<void> {
  const all = [...live];
  for (const c of all) c.kill('SIGKILL');
  await Promise.all(all.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
}
