/**
 * The embedded redis-server's process: its config, its start (answering on its socket), its stop
 * (SHUTDOWN, or SIGTERM for one that lost its socket) and the AOF compaction around them.
 */
import { existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GaxxError, makeDirs, pidAlive, printable, spawnDetached } from '../../proto/index.js';
import { answersBy, socketCommand, socketInfo } from './redis-socket.js';

/** The trimmed text of `p`, or '' when it cannot be read. */
export function readFileSafe(p: string): string {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * Past this size, an AOF that is mostly increments (more than twice its base) is rewritten when
 * the server starts. Each run appends every job's state changes (~10 KiB per task), and a start
 * replays them all: 17 MiB of increments took 150 ms to load, for 5 MiB of live data, and 3.9 MiB
 * (a few hundred tasks) made every start 60 ms slower than its compacted form (275 KiB). So a
 * server started per `gaxx run` compacts about every hundred tasks; a server that lives long (the
 * daemon's) rewrites on its own past the same size (auto-aof-rewrite-min-size).
 */
const AOF_COMPACT_BYTES = 1024 * 1024;

/** Starts a background AOF rewrite when the increments outgrew the base (see AOF_COMPACT_BYTES). */
async function compactAof(socketPath: string): Promise<void> {
  const info = await socketInfo(socketPath, 'persistence');
  const size = Number(info.get('aof_current_size') ?? 0);
  const base = Number(info.get('aof_base_size') ?? 0);
  if (size > AOF_COMPACT_BYTES && size > 2 * base) await socketCommand(socketPath, 'BGREWRITEAOF');
}

/** Waits (bounded) for a rewrite in progress to finish: SHUTDOWN would throw it away. */
async function awaitRewrite(socketPath: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const info = await socketInfo(socketPath, 'persistence');
    if (info.get('aof_rewrite_in_progress') !== '1' && info.get('aof_rewrite_scheduled') !== '1') return;
    await sleep(20);
  }
}

/**
 * The pid of the server this dir's pid file names, while that process lives and is a
 * redis-server (a pid file left by a server that died may name a pid reused since).
 */
export function runningServerPid(dir: string): number | undefined {
  const pid = Number(readFileSafe(join(dir, 'redis.pid')));
  return pid > 0 && isRedisServer(pid) ? pid : undefined;
}

/** Whether `pid` is a live redis-server (not gone, not a zombie, not another program since). */
function isRedisServer(pid: number): boolean {
  return pidAlive(pid) && readFileSafe(`/proc/${pid}/cmdline`).includes('redis-server');
}

function quote(p: string): string {
  return `"${p.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The server's config: no TCP port, a private socket, AOF every second, never evict. */
function writeConfig(dir: string, socketPath: string): string {
  const conf = join(dir, 'redis.conf');
  const lines = [
    'port 0',
    `unixsocket ${quote(socketPath)}`,
    'unixsocketperm 700',
    `dir ${quote(join(dir, 'data'))}`,
    'appendonly yes',
    'appendfsync everysec',
    // The default (64mb) lets increments pile up long past the live data: see AOF_COMPACT_BYTES.
    'auto-aof-rewrite-min-size 1mb',
    'save ""',
    'maxmemory-policy noeviction',
    'daemonize no',
    `pidfile ${quote(join(dir, 'redis.pid'))}`,
    `logfile ${quote(join(dir, 'redis.log'))}`,
    'databases 1',
  ];
  writeFileSync(conf, `${lines.join('\n')}\n`, { mode: 0o600 });
  return conf;
}

/** Starts the server of `dir` on `socketPath` (detached) and waits until it answers; compacts its AOF then. */
export async function startServer(dir: string, socketPath: string, opts: { redisServer?: string; startTimeoutMs?: number; stop?: AbortSignal }): Promise<void> {
  makeDirs(join(dir, 'data'), { mode: 0o700 });
  if (existsSync(socketPath)) unlinkSync(socketPath);
  const conf = writeConfig(dir, socketPath);
  // It outlives this process: it must not hold what this process was started with (a pipe's
  // write end there would keep the pipe's reader waiting), which this process keeps (a --tasks
  // /dev/fd/N is read after this).
  const child = spawnDetached(opts.redisServer ?? 'redis-server', [conf], { cwd: dir });
  let spawnError: Error | undefined;
  child.on('error', (e) => (spawnError = e));
  child.unref();
  // Looked at every 5 ms for its first second (it is ready in tens of ms; a look at a socket not
  // there yet is one failed connect), then every 20 ms (a server loading a large AOF).
  const often = Date.now() + 1000;
  const ready = await answersBy(
    socketPath,
    Date.now() + (opts.startTimeoutMs ?? 10_000),
    200,
    () => (Date.now() < often ? 5 : 20),
    // A binary that cannot run has its exit code set with its error: the error is what to say.
    () => {
      if (spawnError) throw new GaxxError('FAILED_PRECONDITION', `cannot start redis-server: ${spawnError.message}`, { cause: spawnError });
      return child.exitCode !== null;
    },
    opts.stop,
  );
  if (ready) return await compactAof(socketPath);
  if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  if (opts.stop?.aborted) throw new GaxxError('CANCELLED', `stopped while waiting for the embedded redis-server to start; see ${join(dir, 'redis.log')}`);
  const why = child.exitCode !== null && child.pid ? lastWarning(join(dir, 'redis.log'), child.pid) : undefined;
  throw new GaxxError('UNAVAILABLE', `embedded redis-server did not start${why ? `: ${why}` : ''}; see ${join(dir, 'redis.log')}`);
}

/**
 * The last warning (`#`) the server `pid` wrote to its log: why one that exited at its start did
 * (an open-file limit too low for it, a data dir it cannot write), said with the refusal.
 */
function lastWarning(log: string, pid: number): string | undefined {
  const mine = readFileSafe(log)
    .split('\n')
    .filter((l) => l.startsWith(`${pid}:`) && l.includes(' # '));
  const last = mine[mine.length - 1];
  return last === undefined ? undefined : printable(last.slice(last.indexOf(' # ') + 3).trim()).slice(0, 300);
}

/** Stops the server of `dir` (SHUTDOWN after any rewrite in progress; SIGKILL if it stays). */
export async function stopServer(dir: string, socketPath: string): Promise<void> {
  // Only a redis-server is waited for and killed: the pid file of a server that died (killed,
  // or the machine rebooted) may name a pid that another program has been given since.
  const pid = runningServerPid(dir);
  await awaitRewrite(socketPath);
  await socketCommand(socketPath, 'SHUTDOWN', 5000);
  // Its connections close as it exits: it is gone within a few ms (looked at every 2 ms, up to 5 s).
  if (pid !== undefined && !(await redisServerGone(pid, 5000, 2))) process.kill(pid, 'SIGKILL');
  rmSync(socketPath, { force: true });
}

/** Whether `pid` is no longer a redis-server within `ms`, looked at every `everyMs`. */
async function redisServerGone(pid: number, ms: number, everyMs: number): Promise<boolean> {
  for (const until = Date.now() + ms; isRedisServer(pid) && Date.now() < until;) await sleep(everyMs);
  return !isRedisServer(pid);
}

/** How long a server that lost its socket may take to write its AOF and exit after SIGTERM. */
const ORPHAN_STOP_MS = 30_000;

/**
 * Stops the server of `dir` that runs without its socket (see acquireEmbeddedRedis): SIGTERM,
 * on which redis writes its AOF and exits, as SHUTDOWN would have it do. One that does not exit
 * is left running and said so: a second server must not start beside it.
 */
export async function stopOrphan(dir: string, pid: number, socketPath: string): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch (e) {
    // Gone meanwhile, or another user's (then not this dir's server, whatever its pid file says).
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ESRCH' || code === 'EPERM') return;
    throw e;
  }
  if (!(await redisServerGone(pid, ORPHAN_STOP_MS, 5))) {
    throw new GaxxError(
      'UNAVAILABLE',
      `the embedded redis-server (pid ${pid}) runs without its socket ${socketPath} and did not stop on SIGTERM; stop it, then try again (see ${join(dir, 'redis.log')})`,
    );
  }
}
