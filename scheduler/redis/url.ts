/**
 * Redis settings from a URL (no client here: this module loads without ioredis, so the embedded
 * redis-server can be started before the queue's modules load; see scheduler/light).
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
import type { ClusterOptions, RedisOptions } from 'ioredis';
import { GaxxError, isLoopbackHost as isLoopback, parseHostPort } from '../../proto/index.js';

/** Where Redis is and how to reach it, parsed from a URL. */
export type RedisSettings = (
  | { kind: 'single'; options: RedisOptions; display: string }
  | { kind: 'cluster'; nodes: Array<{ host: string; port: number }>; options: ClusterOptions; display: string }
) & {
  /**
   * How long a producer connection's request may go unanswered (its command timeout; default
   * ANSWER_MS in redis.ts): a Redis that keeps the connection and answers nothing is then
   * REDIS_UNAVAILABLE, not a wait without end.
   */
  answerMs?: number;
  /**
   * How long a run's wait rides out a Redis that is down or does not answer before it ends
   * REDIS_UNAVAILABLE (its tasks left for a resume; default REDIS_GONE_MS in run-landing.ts),
   * unless the wait's own options say.
   */
  goneMs?: number;
};

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

/** A URL's host (an IPv6 address in brackets or not) as the one loopback rule has it (proto/address.ts): localhost, or a literal loopback address. */
export function isLoopbackHost(host: string): boolean {
  return isLoopback(host.replace(/^\[|\]$/g, ''));
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
