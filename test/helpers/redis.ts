/**
 * A real redis-server for tests: in a temp dir, on a unix socket (default) or a free loopback
 * port, with AOF on. `kill9()` and `restart()` keep the data dir, so AOF recovery can be tested.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster, Redis } from 'ioredis';
import { socketCommand } from '../../scheduler/redis/embedded-redis.js';
import { createRedis, redisSettingsFromUrl, waitReady, withReadyClient, type RedisRole } from '../../scheduler/redis/redis.js';
import { freePort } from './ports.js';
import { dyingWithTest } from './procs.js';

export interface TestRedis {
  url: string;
  dir: string;
  socketPath?: string;
  port?: number;
  pid(): number | undefined;
  /** Graceful SHUTDOWN (AOF flushed). */
  stop(): Promise<void>;
  /** SIGKILL, no flush beyond what appendfsync already wrote. */
  kill9(): Promise<void>;
  /** Starts again on the same socket/port and data dir. */
  restart(): Promise<void>;
  /** Stops it and removes the temp dir. */
  destroy(): Promise<void>;
}

export interface TestRedisOptions {
  /** Listen on a free loopback TCP port instead of a unix socket. */
  tcp?: boolean;
  /** Extra redis.conf lines (e.g. 'appendonly no', ACL users). */
  config?: string[];
  /** appendfsync policy; tests that restart after kill -9 use 'always'. */
  fsync?: 'always' | 'everysec';
  /** Serve TLS only, on a free loopback port, with these PEM files (client certs not required). */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

function redisLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'redis.log'), 'utf8');
  } catch {
    return '';
  }
}

async function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return Promise.race([new Promise<boolean>((r) => child.once('exit', () => r(true))), sleep(ms).then(() => false)]);
}

/** Starts a redis-server; always `destroy()` it in afterAll. */
export async function startRedis(opts: TestRedisOptions = {}): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'gxr-'));
  const tcp = opts.tcp || opts.tls !== undefined;
  const socketPath = tcp ? undefined : join(dir, 'redis.sock');
  let port: number | undefined;
  const conf = join(dir, 'redis.conf');
  const writeConf = (): void => {
    const tlsLines = opts.tls
      ? [
          'port 0',
          `tls-port ${port}`,
          `tls-cert-file ${opts.tls.certFile}`,
          `tls-key-file ${opts.tls.keyFile}`,
          `tls-ca-cert-file ${opts.tls.caFile}`,
          'tls-auth-clients no',
        ]
      : [];
    writeFileSync(
      conf,
      [
        port ? `port ${port}` : 'port 0',
        port ? 'bind 127.0.0.1' : `unixsocket ${socketPath}`,
        ...(socketPath ? ['unixsocketperm 700'] : []),
        `dir ${dir}`,
        'appendonly yes',
        `appendfsync ${opts.fsync ?? 'everysec'}`,
        'save ""',
        'maxmemory-policy noeviction',
        `logfile ${join(dir, 'redis.log')}`,
        ...tlsLines,
        ...(opts.config ?? []),
      ].join('\n') + '\n',
    );
  };
  let child: ChildProcess | undefined;
  const ping = (): Promise<string | null> => (socketPath ? socketCommand(socketPath, 'PING', 300) : tcpPing(port as number, opts.tls));
  const start = async (): Promise<void> => {
    child = spawn(...dyingWithTest('redis-server', [conf]), { stdio: 'ignore' });
    for (let i = 0; i < 500; i++) {
      const r = await ping();
      if (r === '+PONG' || r?.startsWith('-NOAUTH')) return;
      if (child.exitCode !== null) break;
      await sleep(10);
    }
    child.kill('SIGKILL');
    await exited(child, 2000);
    throw new Error(`redis-server did not start (see ${dir}/redis.log)`);
  };
  const kill = async (signal: NodeJS.Signals): Promise<void> => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    if (!(await exited(child, 5000))) child.kill('SIGKILL');
    await exited(child, 2000);
  };
  // A port found free can be taken before redis binds it: a start that fails so is tried again
  // on a new port (3 times in all). Restarts keep the port, as a real Redis coming back would.
  for (let attempt = 1; ; attempt++) {
    if (tcp) port = await freePort();
    writeConf();
    rmSync(join(dir, 'redis.log'), { force: true });
    try {
      await start();
      break;
    } catch (e) {
      if (!tcp || attempt === 3 || !redisLog(dir).includes('Address already in use')) throw e;
    }
  }
  const made: TestRedis = {
    url: socketPath ? `unix://${socketPath}` : opts.tls ? `rediss://127.0.0.1:${port}?ca=${encodeURIComponent(opts.tls.caFile)}` : `redis://127.0.0.1:${port}`,
    dir,
    socketPath,
    port,
    pid: () => child?.pid,
    stop: () => kill('SIGTERM'),
    kill9: () => kill('SIGKILL'),
    restart: async () => {
      await kill('SIGTERM');
      await start();
    },
    destroy: async () => {
      live.delete(made);
      await kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(made);
  return made;
}

/** Every redis-server started here and not destroyed yet. */
const live = new Set<TestRedis>();

/** Destroys every redis-server this process started and has not destroyed (a bench stopped by a signal). */
export async function destroyAllRedis(): Promise<void> {
  await Promise.all([...live].map((r) => r.destroy()));
}

async function tcpPing(port: number, tls: TestRedisOptions['tls']): Promise<string | null> {
  const { createConnection } = await import('node:net');
  const tlsConnect = (await import('node:tls')).connect;
  return new Promise((resolve) => {
    // Readiness only: the TLS probe does not verify the server (the tests' clients do), and
    // shows the server's own certificate in case client certificates are required.
    const sock = tls
      ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) })
      : createConnection({ host: '127.0.0.1', port });
    const timer = setTimeout(() => done(null), 300);
    let buf = '';
    function done(v: string | null): void {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    }
    sock.on(tls ? 'secureConnect' : 'connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.split('\r\n')[0] ?? null);
    });
    sock.on('error', () => done(null));
  });
}

/** Runs `op` on a ready connection of its own to the Redis at `url`, closed when `op` is done. */
export function withRedisAt<T>(url: string, op: (redis: Redis | Cluster) => Promise<T>): Promise<T> {
  return withReadyClient(redisSettingsFromUrl(url), op);
}

/** A test redis-server and one ready connection to it, for a file's tests; close() ends both. */
export interface RedisAndConnection {
  redis: TestRedis;
  conn: Redis;
  close(): Promise<void>;
}

/** Starts a test redis-server and connects to it as `role` (a standalone server: a Redis, never a Cluster). */
export async function redisAndConnection(role: RedisRole = 'producer'): Promise<RedisAndConnection> {
  const redis = await startRedis();
  const conn = createRedis(redisSettingsFromUrl(redis.url), role) as Redis;
  await waitReady(conn);
  return {
    redis,
    conn,
    close: async () => {
      conn.disconnect();
      await redis.destroy();
    },
  };
}

/**
 * Makes the Redis behind `redis` refuse every write that may use memory (OOM: `maxmemory` of one
 * byte, `noeviction`), or take them again (`on` false: no limit).
 */
export async function refuseWrites(redis: Redis | Cluster, on: boolean): Promise<void> {
  await redis.config('SET', 'maxmemory-policy', 'noeviction');
  await redis.config('SET', 'maxmemory', on ? '1' : '0');
}
