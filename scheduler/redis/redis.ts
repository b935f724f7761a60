/**
 * Redis connections for the queue: settings from a URL, one factory for producers (fail fast when
 * Redis is down) and workers (wait forever, as BullMQ requires), the hash-tagged key prefix every
 * gaxx key lives under, and a durability check that warns about a Redis that can lose jobs.
 *
 * URL forms (user and password are ACL credentials; `db` is the database number):
 * - `redis://[user:pass@]host:port[/db]`, `rediss://...` (TLS; `?ca=PATH` adds a CA bundle,
 *   `&cert=PATH&key=PATH` a client certificate)
 * - `unix:///path/redis.sock[?db=N&user=U&password=P]`
 * - `redis+sentinel://[user:pass@]h1:p1,h2:p2/<master>[/db]` (`rediss+sentinel://` for TLS)
 * - `redis+cluster://[user:pass@]h1:p1,h2:p2` (`rediss+cluster://` for TLS)
 *
 * Whoever can write to the queue can ask for work (agents still run only what an operator
 * signed, but a writer can delete, reorder or read jobs and results). So a plaintext `redis://`
 * URL with no password to a host that is not loopback is refused (REDIS_INSECURE) unless the
 * caller opts in (`allowInsecure`: `--redis-insecure` / `GAXX_REDIS_INSECURE=1`). A unix socket,
 * loopback, a password or TLS passes.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { Redis, Cluster, type RedisOptions, type ClusterOptions } from 'ioredis';
import { GaxxError, parseHostPort } from '../../proto/index.js';

/**
 * Prefix of every gaxx key, BullMQ's included. The braces make it a Redis Cluster hash tag, so
 * every key lands in one slot and multi-key scripts stay legal on a cluster.
 */
export const KEY_PREFIX = '{gaxx}';

/** A gaxx key under the shared hash tag, e.g. `gaxxKey('run', id, 'events')`. */
export function gaxxKey(...parts: string[]): string {
  return [KEY_PREFIX, ...parts].join(':');
}

/** Where Redis is and how to reach it, parsed from a URL. */
export type RedisSettings =
  | { kind: 'single'; options: RedisOptions; display: string }
  | { kind: 'cluster'; nodes: Array<{ host: string; port: number }>; options: ClusterOptions; display: string };

/** What a connection is for: producers fail fast, workers wait for Redis to come back. */
export type RedisRole = 'producer' | 'worker';

const HOSTLIST_URL = /^(rediss?)\+(sentinel|cluster):\/\/(?:([^@/]*)@)?([^/?]+)(\/[^?]*)?(?:\?(.*))?$/;

function invalid(message: string): GaxxError {
  return new GaxxError('CONFIG_INVALID', `redis url: ${message}`);
}

function parseHostList(list: string, defaultPort: number): Array<{ host: string; port: number }> {
  return list.split(',').map((hp) => {
    try {
      return parseHostPort(hp.trim(), { defaultPort, what: 'host' });
    } catch (e) {
      throw invalid((e as Error).message);
    }
  });
}

function parseDb(value: string | undefined | null): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (!/^\d{1,2}$/.test(value)) throw invalid(`database '${value}' is not a number`);
  return Number(value);
}

function credentials(userinfo: string | undefined): { username?: string; password?: string } {
  if (!userinfo) return {};
  const i = userinfo.indexOf(':');
  const user = decodeURIComponent(i < 0 ? userinfo : userinfo.slice(0, i));
  const pass = i < 0 ? undefined : decodeURIComponent(userinfo.slice(i + 1));
  return { ...(user ? { username: user } : {}), ...(pass !== undefined ? { password: pass } : {}) };
}

function tlsOptions(params: URLSearchParams, servername?: string): RedisOptions['tls'] {
  const ca = params.get('ca');
  const cert = params.get('cert');
  const key = params.get('key');
  const client = cert && key ? { cert: readFileSync(cert), key: readFileSync(key) } : {};
  // An IP is never sent as SNI (Node refuses it); the certificate is still checked against it.
  return { ...(servername && !isIP(servername) ? { servername } : {}), ...(ca ? { ca: readFileSync(ca) } : {}), ...client, minVersion: 'TLSv1.2' };
}

/** 127.0.0.0/8, ::1 (any spelling) or localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  return isIP(h) === 6 && new URL(`http://[${h}]`).hostname === '[::1]';
}

/** Options of redisSettingsFromUrl. */
export interface RedisUrlOptions {
  /** Accept plaintext without a password to a non-loopback host (the user opted in explicitly). */
  allowInsecure?: boolean;
}

/** REDIS_INSECURE for plaintext, password-less Redis beyond loopback, unless opted in. */
function refuseInsecure(tls: boolean, password: string | undefined, hosts: string[], display: string, o: RedisUrlOptions): void {
  if (tls || (password !== undefined && password !== '') || o.allowInsecure || hosts.every(isLoopbackHost)) return;
  throw new GaxxError(
    'REDIS_INSECURE',
    `redis url ${display}: plaintext with no password to a non-loopback host lets anyone on the path read and write the queue; use rediss:// or a password, or opt in with --redis-insecure (GAXX_REDIS_INSECURE=1)`,
  );
}

function parseHostListUrl(url: string, m: RegExpExecArray, o: RedisUrlOptions): RedisSettings {
  const [, scheme, mode, userinfo, hosts, path, query] = m;
  const params = new URLSearchParams(query ?? '');
  const creds = credentials(userinfo);
  const display = `${scheme}+${mode}://${hosts}${path ?? ''}`;
  // Malformed first (CONFIG_INVALID), then insecure.
  if (mode === 'sentinel' && !(path ?? '').split('/')[1]) throw invalid('a sentinel url names its master: redis+sentinel://h:p/<master>');
  refuseInsecure(
    scheme === 'rediss',
    creds.password,
    parseHostList(hosts as string, 0).map((h) => h.host),
    display,
    o,
  );
  const tls = scheme === 'rediss' ? tlsOptions(params) : undefined;
  if (mode === 'sentinel') {
    const [, name, db] = (path ?? '').split('/');
    if (!name) throw invalid('a sentinel url names its master: redis+sentinel://h:p/<master>');
    return {
      kind: 'single',
      display,
      options: {
        sentinels: parseHostList(hosts as string, 26379),
        name,
        db: parseDb(db),
        ...creds,
        ...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
      },
    };
  }
  return { kind: 'cluster', display, nodes: parseHostList(hosts as string, 6379), options: { redisOptions: { ...creds, ...(tls ? { tls } : {}) } } };
}

/**
 * Parses a Redis URL into connection settings; CONFIG_INVALID for anything malformed,
 * REDIS_INSECURE for plaintext without a password beyond loopback (see the module comment).
 */
export function redisSettingsFromUrl(url: string, o: RedisUrlOptions = {}): RedisSettings {
  const hostList = HOSTLIST_URL.exec(url);
  if (hostList) return parseHostListUrl(url, hostList, o);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid('not a URL');
  }
  const params = u.searchParams;
  if (u.protocol === 'unix:') {
    if (!u.pathname || u.pathname === '/') throw invalid('unix:// needs a socket path');
    const username = params.get('user') ?? undefined;
    const password = params.get('password') ?? undefined;
    return {
      kind: 'single',
      display: `unix://${decodeURIComponent(u.pathname)}`,
      options: { path: decodeURIComponent(u.pathname), db: parseDb(params.get('db')), ...(username ? { username } : {}), ...(password ? { password } : {}) },
    };
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw invalid(`unsupported scheme '${u.protocol}'`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (!host) throw invalid('missing host');
  const options: RedisOptions = {
    host,
    port: u.port ? Number(u.port) : 6379,
    db: parseDb(u.pathname.replace(/^\//, '')),
    ...credentials(u.username || u.password ? `${u.username}:${u.password}` : undefined),
  };
  if (u.protocol === 'rediss:') options.tls = tlsOptions(params, host);
  const display = `${u.protocol}//${u.host}`;
  refuseInsecure(u.protocol === 'rediss:', options.password, [host], display, o);
  return { kind: 'single', display, options };
}

/** Options that make a connection fail fast (producers) or wait for Redis (workers, daemons). */
export function roleOptions(role: RedisRole): RedisOptions {
  // Workers (and other long-lived readers) reconnect forever, backing off up to 2 s.
  if (role === 'worker') return { maxRetriesPerRequest: null, enableReadyCheck: true, enableOfflineQueue: true, retryStrategy: (n) => Math.min(100 * n, 2000) };
  // Producers: no in-memory queue of commands while disconnected, one retry, short timeouts,
  // so `gaxx run` says REDIS_UNAVAILABLE at once instead of hanging.
  return { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 3000, retryStrategy: (n) => (n > 3 ? null : 100 * n) };
}

/** A Redis (or Cluster) client for `role`. Never sets ioredis' keyPrefix (BullMQ forbids it). */
export function createRedis(settings: RedisSettings, role: RedisRole): Redis | Cluster {
  const extra = roleOptions(role);
  if (settings.kind === 'cluster') {
    return new Cluster(settings.nodes, {
      ...settings.options,
      enableOfflineQueue: role === 'worker',
      redisOptions: { ...settings.options.redisOptions, ...extra },
    });
  }
  return new Redis({ ...settings.options, ...extra, lazyConnect: false });
}

/** A new connection to the same Redis with `role`'s behaviour (e.g. a blocking reader). */
export function duplicateFor(client: Redis | Cluster, role: RedisRole): Redis | Cluster {
  if (client instanceof Cluster) {
    return client.duplicate(undefined, { enableOfflineQueue: role === 'worker', redisOptions: { ...client.options.redisOptions, ...roleOptions(role) } });
  }
  return client.duplicate(roleOptions(role));
}

/** Waits until `client` is ready; REDIS_UNAVAILABLE (and the client closed) after `timeoutMs`. */
export async function waitReady(client: Redis | Cluster, timeoutMs = 5000, display = 'redis'): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(new GaxxError('REDIS_UNAVAILABLE', `redis at ${display} is not reachable`)), timeoutMs);
    const onReady = (): void => done();
    const onEnd = (): void => done(new GaxxError('REDIS_UNAVAILABLE', `redis at ${display} closed the connection`));
    function done(err?: Error): void {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('end', onEnd);
      if (err) reject(err);
      else resolve();
    }
    client.once('ready', onReady);
    client.once('end', onEnd);
  }).catch((e: unknown) => {
    client.disconnect();
    throw e;
  });
}

/** Turns an ioredis failure into REDIS_UNAVAILABLE; GaxxErrors pass through. */
export function redisError(e: unknown, what: string): GaxxError {
  if (e instanceof GaxxError) return e;
  // A refused MULTI says only EXECABORT; the server's reason (MISCONF, OOM, READONLY...) is in
  // the errors of the commands it queued.
  const inner = (e as { previousErrors?: Error[] } | undefined)?.previousErrors?.[0];
  const reason = inner?.message ?? (e as Error)?.message ?? String(e);
  return new GaxxError('REDIS_UNAVAILABLE', `${what}: ${reason}`, { cause: e });
}

/** Parses `INFO` text into a field map. */
function infoFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

/**
 * Warnings about a Redis that can lose or evict queued jobs: no persistence at all, or a
 * `maxmemory-policy` other than noeviction. Uses INFO, which works even where CONFIG is
 * disabled by ACL or renamed; an empty list means nothing to warn about.
 */
export async function durabilityWarnings(client: Redis | Cluster): Promise<string[]> {
  const node = client instanceof Cluster ? client.nodes('master')[0] : client;
  if (!node) return ['no redis cluster master reachable to check persistence'];
  let info: Map<string, string>;
  try {
    info = infoFields(`${await node.info('persistence')}\n${await node.info('memory')}`);
  } catch (e) {
    return [`cannot check redis persistence (INFO refused: ${(e as Error).message})`];
  }
  const warnings: string[] = [];
  const aof = info.get('aof_enabled') === '1';
  let rdb: boolean | undefined;
  try {
    const save = (await node.config('GET', 'save')) as string[];
    rdb = (save[1] ?? '').trim() !== '';
  } catch {
    rdb = undefined; // CONFIG forbidden by ACL or renamed: RDB state unknown
  }
  if (!aof && rdb === false) warnings.push('redis does not persist (appendonly no, no save points): queued tasks are lost when it restarts');
  else if (!aof && rdb === undefined) warnings.push('redis has appendonly off and its save points cannot be read: queued tasks may be lost when it restarts');
  else if (!aof) warnings.push('redis persists by RDB snapshots only: tasks queued since the last snapshot are lost when it restarts (use appendonly yes)');
  const policy = info.get('maxmemory_policy');
  if (policy && policy !== 'noeviction') {
    warnings.push(`redis maxmemory-policy is '${policy}': it may evict queue keys; set maxmemory-policy noeviction`);
  }
  return warnings;
}
