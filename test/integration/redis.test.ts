import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa } from '../../certs/index.js';
import { acquireEmbeddedRedis, socketCommand, socketInfo, type EmbeddedRedis, type EmbeddedRedisOptions } from '../../scheduler/redis/embedded-redis.js';
import type { Redis } from 'ioredis';
import { createRedis, duplicateFor, durabilityWarnings, redisSettingsFromUrl, waitReady } from '../../scheduler/redis/redis.js';
import { eventually } from '../helpers/poll.js';
import { freePort } from '../helpers/ports.js';
import type { GaxxError } from '../../proto/index.js';
import { fdsOn, withInherited } from '../helpers/procs.js';

/** A file's text, or '' when it cannot be read (a process gone from /proc). */
const readFileSafe = (p: string): string => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
};
import { startRedis, type TestRedis } from '../helpers/redis.js';

describe('redis connections', () => {
  let good: TestRedis;
  let lossy: TestRedis;
  let acl: TestRedis;
  beforeAll(async () => {
    [good, lossy, acl] = await Promise.all([
      startRedis(),
      startRedis({ config: ['appendonly no', 'maxmemory-policy allkeys-lru'] }),
      startRedis({ tcp: true, config: ['user default off', 'user gaxx on >s3cret-pass ~* &* +@all'] }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([good?.destroy(), lossy?.destroy(), acl?.destroy()]);
  });

  it('finds nothing to warn about on an AOF + noeviction redis', async () => {
    const r = createRedis(redisSettingsFromUrl(good.url), 'producer');
    await waitReady(r);
    expect(await durabilityWarnings(r)).toEqual([]);
    r.disconnect();
  });

  it('connects without CLIENT SETINFO, as producer, as worker and duplicated', async () => {
    // MONITOR shows every command redis runs, in order: each client's PING comes after anything
    // it sent on connecting. A redis older than 7.2 refuses CLIENT SETINFO instead of running it:
    // that shows as errors counted in its errorstats.
    const watcher = createRedis(redisSettingsFromUrl(good.url), 'worker') as Redis;
    await waitReady(watcher);
    const errors = async (): Promise<number> => Number(/errorstat_ERR:count=(\d+)/.exec(await watcher.info('errorstats'))?.[1] ?? 0);
    const errorsBefore = await errors();
    const monitor = await watcher.monitor();
    const seen: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => seen.push(args.map((a) => a.toLowerCase())));
    const producer = createRedis(redisSettingsFromUrl(good.url), 'producer');
    const worker = createRedis(redisSettingsFromUrl(good.url), 'worker');
    const twin = duplicateFor(producer, 'worker');
    try {
      for (const [i, c] of [producer, worker, twin].entries()) {
        await waitReady(c);
        await c.ping(`probe-${i}`);
      }
      const pings = () => seen.filter((a) => a[0] === 'ping').map((a) => a[1]);
      await eventually(() => pings().length === 3, 10_000);
      expect(pings()).toEqual(['probe-0', 'probe-1', 'probe-2']);
      expect(seen.filter((a) => a[0] === 'info').length).toBeGreaterThan(0);
      expect(seen.filter((a) => a[0] === 'client' && a[1] === 'setinfo')).toEqual([]);
      expect(await errors()).toBe(errorsBefore);
    } finally {
      for (const c of [producer, worker, twin]) c.disconnect();
      monitor.disconnect();
      watcher.disconnect();
    }
  });

  it('warns when redis does not persist and when it evicts', async () => {
    const r = createRedis(redisSettingsFromUrl(lossy.url), 'producer');
    await waitReady(r);
    const w = await durabilityWarnings(r);
    expect(w).toHaveLength(2);
    expect(w.join('\n')).toMatch(/allkeys-lru/);
    r.disconnect();
  });

  it('authenticates with an ACL user and is refused with a wrong password', async () => {
    const r = createRedis(redisSettingsFromUrl(`redis://gaxx:s3cret-pass@127.0.0.1:${acl.port}`), 'producer');
    await waitReady(r);
    expect(await r.set('{gaxx}:probe', '1')).toBe('OK');
    r.disconnect();
    const bad = createRedis(redisSettingsFromUrl(`redis://gaxx:wrong@127.0.0.1:${acl.port}`), 'producer');
    bad.on('error', () => undefined);
    await expect(waitReady(bad, 1500)).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' });
  });

  it('says why a connection never became ready: refused, no socket, no answer, a password missing or wrong', async () => {
    const reasonOf = async (url: string, timeoutMs = 3000): Promise<unknown> => {
      const r = createRedis(redisSettingsFromUrl(url), 'producer');
      r.on('error', () => undefined);
      const e = await waitReady(r, timeoutMs, url).then(
        () => undefined,
        (err: unknown) => err,
      );
      r.disconnect();
      expect(e).toMatchObject({ code: 'REDIS_UNAVAILABLE' });
      return (e as GaxxError).details?.reason;
    };
    // Nothing listens on a free port: refused (not "closed the connection").
    expect(await reasonOf(`redis://127.0.0.1:${await freePort()}`)).toBe('refused');
    const dir = mkdtempSync(join(tmpdir(), 'gxr-why-'));
    // A server that accepts and never answers.
    const silent = createServer(() => undefined);
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
    try {
      expect(await reasonOf(`unix://${join(dir, 'no-such.sock')}`)).toBe('no-socket');
      expect(await reasonOf(`redis://127.0.0.1:${(silent.address() as AddressInfo).port}`, 1500)).toBe('no-answer');
      expect(await reasonOf(`redis://127.0.0.1:${acl.port}`)).toBe('auth');
      expect(await reasonOf(`redis://gaxx:wrong@127.0.0.1:${acl.port}`)).toBe('auth');
    } finally {
      silent.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a producer fails fast with REDIS_UNAVAILABLE when redis is down', async () => {
    const dead = await startRedis();
    await dead.stop();
    const r = createRedis(redisSettingsFromUrl(dead.url), 'producer');
    r.on('error', () => undefined);
    const t0 = Date.now();
    await expect(waitReady(r, 2000)).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' });
    expect(Date.now() - t0).toBeLessThan(10_000);
    await dead.destroy();
  });
});

describe('redis over TLS (rediss://)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gxt-'));
  let tlsRedis: TestRedis;
  beforeAll(async () => {
    const [{ ca }, { ca: other }] = await Promise.all([FleetCa.init(join(dir, 'ca')), FleetCa.init(join(dir, 'other'))]);
    const made = await ca.issue({ identity: { role: 'agent', fleet: 'infra', host: 'redis' }, hosts: ['127.0.0.1'] });
    writeFileSync(join(dir, 'cert.pem'), made.certPem);
    writeFileSync(join(dir, 'key.pem'), made.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
    writeFileSync(join(dir, 'other.pem'), other.certPem);
    tlsRedis = await startRedis({ tls: { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), caFile: join(dir, 'ca.pem') } });
  });
  afterAll(async () => {
    await tlsRedis?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects with the server CA and refuses a server its CA did not sign', async () => {
    const r = createRedis(redisSettingsFromUrl(tlsRedis.url), 'producer');
    await waitReady(r);
    expect(await r.ping()).toBe('PONG');
    r.disconnect();
    const wrong = createRedis(redisSettingsFromUrl(`rediss://127.0.0.1:${tlsRedis.port}?ca=${encodeURIComponent(join(dir, 'other.pem'))}`), 'producer');
    wrong.on('error', () => undefined);
    await expect(waitReady(wrong, 1500)).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE', details: { reason: 'tls' } });
    // The server keeps serving after the refused handshake.
    const again = createRedis(redisSettingsFromUrl(tlsRedis.url), 'producer');
    await waitReady(again);
    expect(await again.ping()).toBe('PONG');
    again.disconnect();
  });

  it('presents a client certificate when the server requires one', async () => {
    const strict = await startRedis({
      tls: { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), caFile: join(dir, 'ca.pem') },
      config: ['tls-auth-clients yes'],
    });
    try {
      const bare = createRedis(redisSettingsFromUrl(strict.url), 'producer');
      bare.on('error', () => undefined);
      await expect(waitReady(bare, 1500)).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' });
      const withCert = createRedis(
        redisSettingsFromUrl(`${strict.url}&cert=${encodeURIComponent(join(dir, 'cert.pem'))}&key=${encodeURIComponent(join(dir, 'key.pem'))}`),
        'producer',
      );
      await waitReady(withCert);
      expect(await withCert.ping()).toBe('PONG');
      withCert.disconnect();
    } finally {
      await strict.destroy();
    }
  });
});

describe('embedded redis-server', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'gxe-'));
  // Every handle a test takes is released after it, also when an assertion failed midway
  // (release is idempotent), so no redis-server outlives its test.
  const held: EmbeddedRedis[] = [];
  async function acquire(dir = stateDir, opts: EmbeddedRedisOptions = {}): Promise<EmbeddedRedis> {
    const h = await acquireEmbeddedRedis(dir, opts);
    held.push(h);
    return h;
  }
  async function releaseAll(): Promise<void> {
    for (const h of held.splice(0)) await h.release();
  }
  afterEach(releaseAll);
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

  it('runs on a 0700 socket dir, is shared, and stops when the last user is done', async () => {
    const a = await acquire();
    expect(a.started).toBe(true);
    expect(statSync(a.dir).mode & 0o777).toBe(0o700);
    expect(statSync(a.socketPath).isSocket()).toBe(true);
    const b = await acquire();
    expect(b.started).toBe(false);
    expect(b.socketPath).toBe(a.socketPath);

    const r = createRedis(redisSettingsFromUrl(a.url), 'producer');
    await waitReady(r);
    expect(await durabilityWarnings(r)).toEqual([]);
    expect(await r.config('GET', 'port')).toEqual(['port', '0']);
    await r.set('{gaxx}:kept', 'yes');
    r.disconnect();

    await a.release();
    expect(await socketCommand(b.socketPath, 'PING')).toBe('+PONG');
    await b.release();
    expect(existsSync(b.socketPath)).toBe(false);
    expect(await socketCommand(b.socketPath, 'PING')).toBeNull();

    // Started again, the AOF brings the data back.
    const c = await acquire();
    expect(c.started).toBe(true);
    expect(await socketCommand(c.socketPath, 'GET {gaxx}:kept')).toBe('$3');
    await c.release();
    expect(existsSync(c.socketPath)).toBe(false);
  });

  it('compacts an AOF of mostly old increments when it starts, so a start does not replay them all; the data stays', async () => {
    const own = mkdtempSync(join(tmpdir(), 'gxe-aof-'));
    const aofBytes = (kind: 'base' | 'incr'): number => {
      const d = join(own, 'redis', 'data', 'appendonlydir');
      return readdirSync(d)
        .filter((f) => f.includes(`.${kind}.`))
        .reduce((n, f) => n + statSync(join(d, f)).size, 0);
    };
    try {
      const a = await acquire(own);
      const r = createRedis(redisSettingsFromUrl(a.url), 'producer');
      await waitReady(r);
      // A daemon's server compacts on its own past 1 MiB, not 64 (the default).
      expect(await r.config('GET', 'auto-aof-rewrite-min-size')).toEqual(['auto-aof-rewrite-min-size', String(1024 * 1024)]);
      await r.set('{gaxx}:kept', 'yes');
      // 6 MiB written and deleted again, as finished runs' jobs are: increments, no live data.
      // (This server is kept from compacting on its own meanwhile; the setting lives until its stop.)
      await r.config('SET', 'auto-aof-rewrite-percentage', '0');
      const big = 'x'.repeat(100 * 1024);
      for (let i = 0; i < 60; i++) await r.set(`{gaxx}:gone:${i}`, big);
      for (let i = 0; i < 60; i++) await r.del(`{gaxx}:gone:${i}`);
      r.disconnect();
      await a.release();
      expect(aofBytes('incr')).toBeGreaterThan(6_000_000);

      // The next start rewrites it (in the background); the stop waits for that to finish.
      const b = await acquire(own);
      expect(b.started).toBe(true);
      await b.release();
      expect(aofBytes('incr')).toBeLessThan(64 * 1024);
      expect(aofBytes('base')).toBeLessThan(64 * 1024);

      const c = await acquire(own);
      expect(await socketCommand(c.socketPath, 'GET {gaxx}:kept')).toBe('$3');
      expect((await socketInfo(c.socketPath, 'persistence')).get('aof_rewrite_in_progress')).toBe('0');
      await c.release();
    } finally {
      await releaseAll();
      rmSync(own, { recursive: true, force: true });
    }
  });

  it('holds its lock only while it starts or stops the server, and breaks one left by a process that is gone', async () => {
    const a = await acquire();
    const lock = join(a.dir, 'server.lock');
    expect(existsSync(lock)).toBe(false);
    // A lock left behind by a process that is gone.
    writeFileSync(lock, JSON.stringify({ pid: 999999999 }));
    await a.release();
    expect(existsSync(lock)).toBe(false);
    expect(existsSync(a.socketPath)).toBe(false);
  });

  it('waits for a running server that does not answer at once, and never starts a second one on its socket', async () => {
    // A stopped server answers nothing, as one starved of CPU on a loaded machine answers late.
    const a = await acquire();
    const pid = Number(readFileSync(join(a.dir, 'redis.pid'), 'utf8'));
    expect(pid).toBeGreaterThan(0);
    const r = createRedis(redisSettingsFromUrl(a.url), 'producer');
    await waitReady(r);
    await r.set('{gaxx}:first', 'one');
    process.kill(pid, 'SIGSTOP');
    let busy: number | undefined;
    try {
      // Never answered within the wait: UNAVAILABLE naming the server, and it is not replaced.
      await expect(acquire(stateDir, { busyWaitMs: 300, onBusy: (p) => (busy = p) })).rejects.toMatchObject({
        code: 'UNAVAILABLE',
        message: expect.stringContaining(`redis-server (pid ${pid}) runs but does not answer`),
      });
      expect(busy).toBe(pid);
      expect(readFileSync(join(a.dir, 'redis.pid'), 'utf8').trim()).toBe(String(pid));
      // Answered while waited for (let go when the wait has begun): the same server, shared.
      let waited = false;
      const b = await acquire(stateDir, {
        onBusy: () => {
          waited = true;
          process.kill(pid, 'SIGCONT');
        },
      });
      expect(waited).toBe(true);
      expect(b.started).toBe(false);
      expect(readFileSync(join(a.dir, 'redis.pid'), 'utf8').trim()).toBe(String(pid));
      expect(await socketCommand(b.socketPath, 'GET {gaxx}:first')).toBe('$3');
      expect(readdirSync(join(a.dir, 'users'))).toHaveLength(2);
    } finally {
      process.kill(pid, 'SIGCONT');
      r.disconnect();
    }
  });

  it('says why a server could not start: a binary that cannot run, and one that exits at once', async () => {
    const dir = mkdtempSync(join(stateDir, 'fail-'));
    await expect(acquire(dir, { redisServer: join(dir, 'no-such-redis-server') })).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: expect.stringContaining('cannot start redis-server: spawn'),
    });
    // Given up as soon as it exited: a start timeout of 10 minutes would outlast the test's own.
    await expect(acquire(dir, { redisServer: '/bin/false', startTimeoutMs: 600_000 })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringContaining('embedded redis-server did not start; see'),
    });
    // Nobody is left registered as a user of a server that never ran.
    expect(readdirSync(join(dir, 'redis', 'users'))).toEqual([]);
  });

  it('signals only its own server: a pid file left by a server that died, naming another program since, is left alone', async () => {
    const dir = mkdtempSync(join(stateDir, 'reused-'));
    const a = await acquire(dir);
    const pid = Number(readFileSync(join(a.dir, 'redis.pid'), 'utf8'));
    // The server dies without removing its pid file, and that pid now names another program (one of ours).
    process.kill(pid, 'SIGKILL');
    expect(await eventually(() => !readFileSafe(`/proc/${pid}/cmdline`).includes('redis-server'), 30_000, 10)).toBe(true);
    const other = spawn('sleep', ['600'], { stdio: 'ignore' });
    const ended = new Promise<NodeJS.Signals | null>((done) => other.once('exit', (_code, signal) => done(signal)));
    try {
      writeFileSync(join(a.dir, 'redis.pid'), String(other.pid));
      await a.release();
      expect(existsSync(a.socketPath)).toBe(false);
    } finally {
      other.kill('SIGTERM');
    }
    // Ended by our SIGTERM: the release neither waited for it nor killed it.
    expect(await ended).toBe('SIGTERM');
  });

  it('stops a server whose socket file was removed before it starts another: one server per data dir, and the data stays', async () => {
    const dir = mkdtempSync(join(stateDir, 'lost-socket-'));
    const a = await acquire(dir);
    const first = Number(readFileSync(join(a.dir, 'redis.pid'), 'utf8'));
    expect(await socketCommand(a.socketPath, 'SET {gaxx}:kept yes')).toBe('+OK');
    rmSync(a.socketPath);
    const b = await acquire(dir);
    expect(b.started).toBe(true);
    // The first server is gone (not merely left running unreachable), the second answers, with the data.
    expect(readFileSafe(`/proc/${first}/cmdline`)).not.toContain('redis-server');
    const second = Number(readFileSync(join(b.dir, 'redis.pid'), 'utf8'));
    expect(second).not.toBe(first);
    expect(await socketCommand(b.socketPath, 'GET {gaxx}:kept')).toBe('$3');
  });

  it('holds none of the descriptors the process that started it was given: it outlives that process', async () => {
    const leftOpen = join(stateDir, 'left-open');
    writeFileSync(leftOpen, '');
    const fd = openSync(leftOpen, 'r');
    const own = mkdtempSync(join(tmpdir(), 'gxe-fds-'));
    // A process given fd 40 without close-on-exec (Node marks only fds 0-15 it starts with so)
    // says where that fd points, starts the server, says its pid, and releases it once its stdin ends.
    const built = pathToFileURL(resolve(__dirname, '../../dist/scheduler/redis/embedded-redis.js')).href;
    const script = [
      `import { readFileSync, readlinkSync } from 'node:fs';`,
      `import { acquireEmbeddedRedis } from ${JSON.stringify(built)};`,
      `process.stdout.write(readlinkSync('/proc/self/fd/40') + '\\n');`,
      `const h = await acquireEmbeddedRedis(${JSON.stringify(own)});`,
      `process.stdout.write(readFileSync(h.dir + '/redis.pid', 'utf8').trim() + '\\n');`,
      `process.stdin.on('end', () => h.release()).resume();`,
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: withInherited(['pipe', 'pipe', 'inherit'], [[40, fd]]) });
    closeSync(fd);
    const exited = new Promise((r) => child.on('exit', r));
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    try {
      expect(await eventually(() => out.split('\n').length > 2 || child.exitCode !== null, 30_000, 20)).toBe(true);
      const [held, pid] = out.trim().split('\n');
      expect(held).toBe(leftOpen);
      expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('redis-server');
      // Running (its socket and log open), with nothing on the file.
      expect(readdirSync(`/proc/${pid}/fd`).length).toBeGreaterThan(2);
      expect(fdsOn(Number(pid), leftOpen)).toEqual([]);
    } finally {
      child.stdin?.end();
      expect(await exited).toBe(0);
      rmSync(own, { recursive: true, force: true });
    }
  });

  it('prunes users whose process is gone', async () => {
    const a = await acquire();
    writeFileSync(join(a.dir, 'users', '999999999.dead'), '999999999');
    await a.release();
    expect(existsSync(a.socketPath)).toBe(false);
  });
});
