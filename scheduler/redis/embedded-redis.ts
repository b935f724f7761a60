/**
 * The embedded redis-server: when no Redis URL is configured, gaxx runs its own redis-server on a
 * unix socket in the state dir, so a single machine needs no Redis setup and no port is opened.
 *
 * Layout of `<stateDir>/redis/` (0700, so only this user reaches the socket):
 *   redis.conf, redis.sock (unixsocketperm 700), redis.pid, redis.log,
 *   data/      the server's own `dir` (appendonly AOF, fsync every second),
 *              compacted so that a start does not replay every run there ever was
 *              (see redis-server-process.ts compactAof),
 *   users/     one file per live user, named `<pid>.<token>`: the reference count,
 *   server.lock  a lock (proto's file-lock.ts) held while deciding to start, reuse or stop the server.
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
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GaxxError, makeDirs, pidAlive, withFileLock } from '../../proto/index.js';
import { runningServerPid, startServer, stopOrphan, stopServer } from './redis-server-process.js';
import { answersBy, socketCommand } from './redis-socket.js';
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
  /**
   * A command's Ctrl-C: ends a wait for the server (one that runs and does not answer, one
   * starting, the lock another process holds) at once with CANCELLED; a server this call started
   * and stopped waiting for is killed, as one that did not start in time is.
   */
  stop?: AbortSignal;
}

/** What a stop of a wait for the embedded server ends it with. */
function stoppedWaiting(what: string): GaxxError {
  return new GaxxError('CANCELLED', `stopped while waiting for ${what}`);
}

export { socketCommand, socketInfo } from './redis-socket.js';

const SOCKET_PATH_MAX = 100; // sun_path is 108 bytes on Linux; keep a margin

/** The lock held while deciding to start, reuse or stop the server (module comment). */
const LOCK_FILE = 'server.lock';
/** How long a caller waits for that lock: its holder may wait out a busy server (busyWaitMs, 30 s) and then start one. */
const LOCK_WAIT_MS = 60_000;

function withLock<T>(dir: string, fn: () => Promise<T>, stop?: AbortSignal): Promise<T> {
  return withFileLock(join(dir, LOCK_FILE), "the embedded redis-server's lock", fn, { waitMs: LOCK_WAIT_MS, ...(stop ? { stop } : {}) });
}

/** Live users after removing the files of dead pids. */
function pruneUsers(usersDir: string): string[] {
  const live: string[] = [];
  for (const name of readdirSync(usersDir)) {
    const pid = Number(name.split('.')[0]);
    if (pid > 0 && pidAlive(pid)) live.push(name);
    else rmSync(join(usersDir, name), { force: true });
  }
  return live;
}

/** Makes `dir` exist with mode 0700 (tightening it when it was looser). */
function privateDir(dir: string): void {
  makeDirs(dir, { mode: 0o700 });
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
  const started = await withLock(
    dir,
    async () => {
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
            if (await answersBy(socketPath, Date.now() + (opts.busyWaitMs ?? 30_000), 1000, () => 20, undefined, opts.stop)) return false;
            if (opts.stop?.aborted) throw stoppedWaiting(`the embedded redis-server (pid ${pid}) to answer on ${socketPath}`);
            throw new GaxxError(
              'UNAVAILABLE',
              `the embedded redis-server (pid ${pid}) runs but does not answer on ${socketPath}; see ${join(dir, 'redis.log')}`,
            );
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
    },
    opts.stop,
  );
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
export async function redisTarget(
  url: string | undefined,
  stateDir: string,
  opts: EmbeddedRedisOptions & RedisUrlOptions & Pick<RedisSettings, 'answerMs' | 'goneMs'> = {},
): Promise<RedisTarget> {
  // How long a request, and a run's wait, bear a Redis that does not answer.
  const answer = { ...(opts.answerMs === undefined ? {} : { answerMs: opts.answerMs }), ...(opts.goneMs === undefined ? {} : { goneMs: opts.goneMs }) };
  if (url)
    return {
      settings: { ...redisSettingsFromUrl(url, { allowInsecure: opts.allowInsecure ?? false }), ...answer },
      embedded: undefined,
      release: async () => undefined,
    };
  const embedded = await acquireEmbeddedRedis(stateDir, opts);
  return { settings: { ...redisSettingsFromUrl(embedded.url), ...answer }, embedded, release: () => embedded.release() };
}
