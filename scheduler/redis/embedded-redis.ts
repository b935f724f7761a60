/**
 * The embedded redis-server: when no Redis URL is configured, gaxx runs its own redis-server on a
 * unix socket in the state dir, so a single machine needs no Redis setup and no port is opened.
 *
 * Layout of `<stateDir>/redis/` (0700, so only this user reaches the socket):
 *   redis.conf, redis.sock (unixsocketperm 700), redis.pid, redis.log,
 *   data/      the server's own `dir` (appendonly AOF, fsync every second),
 *              compacted so that a start does not replay every run there ever was (see compactAof),
 *   users/     one file per live user, named `<pid>.<token>`: the reference count,
 *   lock/      a mkdir lock held while deciding to start, reuse or stop the server.
 *
 * Sharing and stopping: `acquireEmbeddedRedis` registers a user file and reuses a server that
 * answers PING on the socket, or starts one (detached, so it outlives the process that started
 * it while others still use it; a server of this dir left running without its socket file is
 * stopped first, so that one data dir never has two). `release()` removes the user file; the
 * user that leaves no live user behind shuts the server down (SHUTDOWN, which fsyncs the AOF).
 * Files of users whose pid is gone (killed) are pruned under the lock, so a crashed user delays
 * the stop only until the next acquire/release. If every user was killed, the server keeps
 * running until the next gaxx process uses and releases it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeInheritedFds, GaxxError } from '../../proto/index.js';
import { redisSettingsFromUrl, type RedisSettings, type RedisUrlOptions } from './url.js';

/** A handle on the shared embedded server. */
export interface EmbeddedRedis {
  /** `unix://<dir>/redis.sock`, for redisSettingsFromUrl. */
  url: string;
  socketPath: string;
  dir: string;
  /** True when this call started the server (false: reused a running one). */
  started: boolean;
  /** Drops this user; the last one stops the server. Idempotent. */
  release(): Promise<void>;
}

export interface EmbeddedRedisOptions {
  /** The redis-server binary (default: `redis-server` on PATH). */
  redisServer?: string;
  startTimeoutMs?: number;
  /**
   * How long to wait for a running server that does not answer at once (a loaded machine, a
   * large AOF loading) before UNAVAILABLE: 30 s. It is never replaced by a second server.
   */
  busyWaitMs?: number;
  /** Called once (with its pid) when a running server did not answer at once and the call waits for it. */
  onBusy?: (pid: number) => void;
}

const SOCKET_PATH_MAX = 100; // sun_path is 108 bytes on Linux; keep a margin

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sends one inline command to the socket; resolves with the first reply line, or null. */
export function socketCommand(path: string, command: string, timeoutMs = 1000): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = createConnection({ path });
    let buf = '';
    const finish = (v: string | null): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    sock.on('connect', () => sock.write(`${command}\r\n`));
    sock.on('data', (d) => {
      buf += d.toString();
      const i = buf.indexOf('\r\n');
      if (i >= 0) finish(buf.slice(0, i));
    });
    sock.on('error', () => finish(null));
    sock.on('close', () => finish(buf || null));
  });
}

/** Sends `INFO <section>` to the socket; resolves with its fields, or an empty map. */
export function socketInfo(path: string, section: string, timeoutMs = 1000): Promise<Map<string, string>> {
  return new Promise((resolve) => {
    const sock = createConnection({ path });
    const parts: Buffer[] = [];
    const finish = (): void => {
      clearTimeout(timer);
      sock.destroy();
      const text = Buffer.concat(parts).toString();
      const fields = new Map<string, string>();
      if (!text.startsWith('$')) return resolve(fields);
      for (const line of text.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) fields.set(line.slice(0, i), line.slice(i + 1));
      }
      resolve(fields);
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('connect', () => sock.write(`INFO ${section}\r\n`));
    sock.on('data', (d) => {
      parts.push(d);
      // A bulk reply: $<length>\r\n<length bytes>\r\n.
      const head = Buffer.concat(parts);
      const eol = head.indexOf('\r\n');
      if (eol > 0 && head.length >= eol + 2 + Number(head.subarray(1, eol).toString()) + 2) finish();
    });
    sock.on('error', finish);
    sock.on('close', finish);
  });
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

async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(dir, 'lock');
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock, { mode: 0o700 });
      writeFileSync(join(lock, 'owner'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(readFileSafe(join(lock, 'owner')));
      const age = Date.now() - statSafe(lock);
      // A lock whose owner died (or that never got an owner file) is broken after a grace period.
      if ((owner > 0 && !isAlive(owner)) || (!owner && age > 5000)) rmSync(lock, { recursive: true, force: true });
      else if (i > 1000) throw new GaxxError('UNAVAILABLE', `embedded redis: lock ${lock} held by pid ${owner} for too long`);
      else await sleep(10);
    }
  }
  try {
    return await fn();
  } finally {
    dropLock(lock);
  }
}

/**
 * Removes the lock this process holds: its owner file, then the dir. (A recursive rmSync loads
 * and runs Node's rimraf, ~2 ms on the first call: twice in every `gaxx run`.) Anything else
 * found in it is removed as well.
 */
function dropLock(lock: string): void {
  try {
    unlinkSync(join(lock, 'owner'));
    rmdirSync(lock);
  } catch {
    rmSync(lock, { recursive: true, force: true });
  }
}

function readFileSafe(p: string): string {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return '';
  }
}

function statSafe(p: string): number {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return Date.now();
  }
}

/**
 * The pid of the server this dir's pid file names, while that process lives and is a
 * redis-server (a pid file left by a server that died may name a pid reused since).
 */
function runningServerPid(dir: string): number | undefined {
  const pid = Number(readFileSafe(join(dir, 'redis.pid')));
  return pid > 0 && isRedisServer(pid) ? pid : undefined;
}

/** Whether `pid` is a live redis-server (not gone, not a zombie, not another program since). */
function isRedisServer(pid: number): boolean {
  return isAlive(pid) && readFileSafe(`/proc/${pid}/cmdline`).includes('redis-server');
}

/**
 * Whether the server on `socketPath` answers PING before `until`: asked again and again, each
 * ask given up to `askMs`, `pause()` ms apart, until `gone()` says no server will answer.
 */
async function answersBy(socketPath: string, until: number, askMs: number, pause: () => number, gone: () => boolean = () => false): Promise<boolean> {
  while (Date.now() < until) {
    if ((await socketCommand(socketPath, 'PING', Math.min(askMs, Math.max(1, until - Date.now())))) === '+PONG') return true;
    if (gone()) return false;
    await sleep(pause());
  }
  return false;
}

/** Live users after removing the files of dead pids. */
function pruneUsers(usersDir: string): string[] {
  const live: string[] = [];
  for (const name of readdirSync(usersDir)) {
    const pid = Number(name.split('.')[0]);
    if (pid > 0 && isAlive(pid)) live.push(name);
    else rmSync(join(usersDir, name), { force: true });
  }
  return live;
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

async function startServer(dir: string, socketPath: string, opts: EmbeddedRedisOptions): Promise<void> {
  mkdirSync(join(dir, 'data'), { recursive: true, mode: 0o700 });
  if (existsSync(socketPath)) unlinkSync(socketPath);
  const conf = writeConfig(dir, socketPath);
  // It outlives this process: it must not hold what this process was started with (a pipe's
  // write end there would keep the pipe's reader waiting), and this process needs none of it.
  closeInheritedFds();
  const child = spawn(opts.redisServer ?? 'redis-server', [conf], { detached: true, stdio: 'ignore', cwd: dir });
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
  );
  if (ready) return await compactAof(socketPath);
  if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  throw new GaxxError('UNAVAILABLE', `embedded redis-server did not start; see ${join(dir, 'redis.log')}`);
}

async function stopServer(dir: string, socketPath: string): Promise<void> {
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
async function stopOrphan(dir: string, pid: number, socketPath: string): Promise<void> {
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

/** Makes `dir` exist with mode 0700 (tightening it when it was looser). */
function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/** Starts (or joins) the embedded redis-server of `stateDir`. See the module comment. */
export async function acquireEmbeddedRedis(stateDir: string, opts: EmbeddedRedisOptions = {}): Promise<EmbeddedRedis> {
  const dir = join(stateDir, 'redis');
  const socketPath = join(dir, 'redis.sock');
  if (socketPath.length > SOCKET_PATH_MAX) {
    throw new GaxxError('FAILED_PRECONDITION', `state dir path too long for a unix socket (${socketPath.length} > ${SOCKET_PATH_MAX}): set GAXX_HOME shorter`);
  }
  privateDir(stateDir);
  privateDir(dir);
  privateDir(join(dir, 'users'));
  const userFile = join(dir, 'users', `${process.pid}.${randomBytes(6).toString('hex')}`);
  const started = await withLock(dir, async () => {
    pruneUsers(join(dir, 'users'));
    writeFileSync(userFile, String(process.pid), { mode: 0o600 });
    try {
      // No socket, no server: it is started at once, before this call first yields (a caller that
      // then loads the queue's modules has the server boot meanwhile; see scheduler/light).
      if (existsSync(socketPath)) {
        if ((await socketCommand(socketPath, 'PING', 500)) === '+PONG') return false;
        // A server that runs but did not answer in time (a loaded machine, an AOF loading) is
        // waited for, never replaced: a second server on the same socket would split the users
        // between two databases (a daemon on the old one, every later run on the new one) and
        // leave the old one running with nobody to stop it.
        const pid = runningServerPid(dir);
        if (pid !== undefined) {
          opts.onBusy?.(pid);
          if (await answersBy(socketPath, Date.now() + (opts.busyWaitMs ?? 30_000), 1000, () => 20)) return false;
          throw new GaxxError('UNAVAILABLE', `the embedded redis-server (pid ${pid}) runs but does not answer on ${socketPath}; see ${join(dir, 'redis.log')}`);
        }
      } else {
        // A server whose socket file is gone (removed by hand, or by a cleaner of old files)
        // can no longer be reached, and a second one would write the same AOF beside it.
        const orphan = runningServerPid(dir);
        if (orphan !== undefined) await stopOrphan(dir, orphan, socketPath);
      }
      await startServer(dir, socketPath, opts);
    } catch (e) {
      rmSync(userFile, { force: true });
      throw e;
    }
    return true;
  });
  let released = false;
  return {
    url: `unix://${socketPath}`,
    socketPath,
    dir,
    started,
    release: async () => {
      if (released) return;
      released = true;
      await withLock(dir, async () => {
        rmSync(userFile, { force: true });
        if (pruneUsers(join(dir, 'users')).length === 0) await stopServer(dir, socketPath);
      });
    },
  };
}

/** The Redis to use: the configured URL, or the embedded server of `stateDir`. */
export interface RedisTarget {
  settings: RedisSettings;
  /** Set when the embedded server is used. */
  embedded: EmbeddedRedis | undefined;
  /** Drops this process's use of the embedded server (no-op for a configured URL). */
  release(): Promise<void>;
}

/**
 * Resolves the Redis to use; starts or joins the embedded one when no URL is configured.
 * `allowInsecure`: see redisSettingsFromUrl (REDIS_INSECURE).
 */
export async function redisTarget(url: string | undefined, stateDir: string, opts: EmbeddedRedisOptions & RedisUrlOptions = {}): Promise<RedisTarget> {
  if (url) return { settings: redisSettingsFromUrl(url, { allowInsecure: opts.allowInsecure ?? false }), embedded: undefined, release: async () => undefined };
  const embedded = await acquireEmbeddedRedis(stateDir, opts);
  return { settings: redisSettingsFromUrl(embedded.url), embedded, release: () => embedded.release() };
}
