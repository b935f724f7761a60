/**
 * Redis connections for the queue: one factory for producers (fail fast when Redis is down) and
 * workers (wait forever, as BullMQ requires), the hash-tagged key prefix every gaxx key lives
 * under, and a durability check that warns about a Redis that can lose jobs. Settings come from
 * a URL (url.ts, re-exported here).
 */
import { Redis, Cluster, type RedisOptions } from 'ioredis';
import { GaxxError } from '../../proto/index.js';
import { CONNECT_ERRORS, redisError, TIMED_OUT, type NotReadyKind } from './errors.js';
import type { RedisSettings } from './url.js';

export { isLoopbackHost, redisSettingsFromUrl, type RedisSettings, type RedisUrlOptions } from './url.js';
export { isRedisClientError, redisError, unanswered, type NotReadyKind } from './errors.js';

/**
 * Prefix of every gaxx key, BullMQ's included. The braces make it a Redis Cluster hash tag, so
 * every key lands in one slot and multi-key scripts stay legal on a cluster.
 */
export const KEY_PREFIX = '{gaxx}';

/** A gaxx key under the shared hash tag, e.g. `gaxxKey('run', id, 'events')`. */
export function gaxxKey(...parts: string[]): string {
  return [KEY_PREFIX, ...parts].join(':');
}

/** What a connection is for: producers fail fast, workers wait for Redis to come back. */
export type RedisRole = 'producer' | 'worker';

/**
 * What every connection of ours sets: no CLIENT SETINFO on connect. ioredis would send two (its
 * name, and its version read from its package.json through node:fs/promises): in the bundle that
 * file is not there (the version it reports is an error text), Redis before 7.2 refuses both
 * commands, and setting up node:fs/promises costs ~2 ms of the start of a `gaxx run` that a daemon
 * dispatches (one that loads grpc-js has it set up by node:http2 anyway).
 */
const COMMON: RedisOptions = { disableClientInfo: true };

/**
 * How long a producer's request may go unanswered by default (RedisSettings.answerMs): a Redis
 * that keeps the connection and answers nothing (stopped, paused, cut off without a reset) is
 * REDIS_UNAVAILABLE after it, as one that is gone. A worker's connections (blocking reads, the
 * daemon's) have none: their own loops watch for a Redis that does not answer.
 */
export const ANSWER_MS = 10_000;

/** Reconnect backoff of a connection that waits for Redis: 100 ms more per attempt, at most 2 s. */
const backoff = (n: number): number => Math.min(100 * n, 2000);

/**
 * Options that make a connection fail fast (producers) or wait for Redis (workers, daemons).
 *
 * A producer fails fast at start only: a connection that was never ready gives up after 3 quick
 * retries (`gaxx run` says REDIS_UNAVAILABLE at once instead of hanging). Once it has been ready
 * it reconnects for as long as it is open, as a worker's does: a Redis that restarts under a
 * running `gaxx run` is used again when it is back, and the caller's own bound (the wait's
 * `redisGoneMs`) decides when to give up. Its commands still fail at once while it is down (no
 * offline queue), and a request it sent goes unanswered `answerMs` at most (ANSWER_MS): nothing
 * waits unbounded on it.
 */
export function roleOptions(role: RedisRole, answerMs = ANSWER_MS): RedisOptions {
  // A worker's duplicate of a producer's connection does not keep its request bound (its blocking reads wait on purpose).
  if (role === 'worker')
    return { ...COMMON, commandTimeout: undefined, maxRetriesPerRequest: null, enableReadyCheck: true, enableOfflineQueue: true, retryStrategy: backoff };
  let wasReady = false;
  return {
    ...COMMON,
    commandTimeout: answerMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 3000,
    retryStrategy: (n) => (wasReady ? backoff(n) : n > 3 ? null : 100 * n),
    // ioredis has no option for this: the strategy learns of the first ready through the
    // connection's 'ready' event (readyOnce below).
    [READY_HOOK]: () => (wasReady = true),
  } as RedisOptions;
}

/** Where roleOptions leaves the hook a producer's connection calls once it is ready. */
const READY_HOOK = Symbol('gaxx.onFirstReady');

/** Tells a producer's retry strategy (roleOptions) that its connection has been ready. */
function readyOnce<C extends Redis | Cluster>(client: C, options: RedisOptions): C {
  const hook = (options as { [READY_HOOK]?: () => void })[READY_HOOK];
  if (hook) client.once('ready', hook);
  return client;
}

/** A Redis (or Cluster) client for `role`. Never sets ioredis' keyPrefix (BullMQ forbids it). */
export function createRedis(settings: RedisSettings, role: RedisRole): Redis | Cluster {
  const extra = roleOptions(role, settings.answerMs);
  if (settings.kind === 'cluster') {
    return readyOnce(
      new Cluster(settings.nodes, {
        ...settings.options,
        enableOfflineQueue: role === 'worker',
        redisOptions: { ...settings.options.redisOptions, ...extra },
      }),
      extra,
    );
  }
  return readyOnce(new Redis({ ...settings.options, ...extra, lazyConnect: false }), extra);
}

/** A new connection to the same Redis with `role`'s behaviour (e.g. a blocking reader). */
export function duplicateFor(client: Redis | Cluster, role: RedisRole): Redis | Cluster {
  // A producer's duplicate keeps its request bound.
  const bound = (client instanceof Cluster ? client.options.redisOptions : client.options)?.commandTimeout;
  const extra = roleOptions(role, bound);
  if (client instanceof Cluster) {
    return readyOnce(client.duplicate(undefined, { enableOfflineQueue: role === 'worker', redisOptions: { ...client.options.redisOptions, ...extra } }), extra);
  }
  return readyOnce(client.duplicate(extra), extra);
}

/**
 * Waits until `client` is ready; REDIS_UNAVAILABLE (and the client closed) when it gives up or
 * after `timeoutMs`, saying why from what the connection went through (notReadyReason).
 * `stop` (a command's Ctrl-C) ends the wait at once: CANCELLED, the client closed.
 */
export async function waitReady(client: Redis | Cluster, timeoutMs = 5000, display = 'redis', stop?: AbortSignal): Promise<void> {
  if (client.status === 'ready') return;
  // ioredis reports each failed attempt as an 'error' (refused, no socket, a refused AUTH...): the last one says why.
  let last: Error | undefined;
  let connected = false;
  await new Promise<void>((resolve, reject) => {
    const fail = (gaveUp: boolean): void => {
      const why = notReadyReason({ last, connected, gaveUp, timeoutMs });
      done(new GaxxError('REDIS_UNAVAILABLE', `redis at ${display}: ${why.text}`, { ...(last ? { cause: last } : {}), details: { reason: why.kind } }));
    };
    const timer = setTimeout(() => fail(false), timeoutMs);
    const onReady = (): void => done();
    const onEnd = (): void => fail(true);
    const onError = (e: Error): void => void (last = e);
    const onConnect = (): void => void (connected = true);
    const onStop = (): void => done(new GaxxError('CANCELLED', `stopped while waiting for redis at ${display} to be ready`));
    function done(err?: Error): void {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('end', onEnd);
      client.off('error', onError);
      client.off('connect', onConnect);
      stop?.removeEventListener('abort', onStop);
      if (err) reject(err);
      else resolve();
    }
    client.once('ready', onReady);
    client.once('end', onEnd);
    client.on('error', onError);
    client.on('connect', onConnect);
    if (stop?.aborted) onStop();
    else stop?.addEventListener('abort', onStop, { once: true });
  }).catch((e: unknown) => {
    client.disconnect();
    throw e;
  });
}

/**
 * `fn` on a producer connection of its own to `settings`' Redis once it is ready (waitReady:
 * REDIS_UNAVAILABLE within 5 s; CANCELLED at once when `stop` aborts), closed after.
 */
export async function withReadyClient<T>(settings: RedisSettings, fn: (redis: Redis | Cluster) => Promise<T>, stop?: AbortSignal): Promise<T> {
  const redis = createRedis(settings, 'producer');
  // Failures reach the caller through waitReady and the commands; unheard, ioredis prints each.
  redis.on('error', () => undefined);
  try {
    await waitReady(redis, 5000, settings.display, stop);
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/** What a connection that never became ready went through. */
export interface NotReady {
  /** The last error it reported (one per failed attempt). */
  last: Error | undefined;
  /** Whether a transport connection was made (the server then did not answer, or refused us). */
  connected: boolean;
  /** Whether it stopped trying (a producer gives up after a few attempts) rather than ran out of time. */
  gaveUp: boolean;
  timeoutMs: number;
}

/**
 * Why a connection never became ready, for REDIS_UNAVAILABLE: refused, no socket, timed out, an
 * authentication Redis refused, a TLS handshake that failed, or a server that accepted the
 * connection and never answered. Never quotes the URL (the caller names it by its display form).
 */
export function notReadyReason(n: NotReady): { kind: NotReadyKind; text: string } {
  const e = n.last as (Error & { code?: string }) | undefined;
  const msg = e?.message ?? '';
  const secs = `${Math.round(n.timeoutMs / 100) / 10} s`;
  if (e?.name === 'ReplyError') {
    if (/^NOAUTH/.test(msg))
      return { kind: 'auth', text: 'it requires a password: give one in the URL (redis://USER:PASSWORD@HOST:PORT, or ?password= with unix://)' };
    if (/^WRONGPASS/.test(msg)) return { kind: 'auth', text: 'authentication failed: wrong user name or password, or the user is disabled (WRONGPASS)' };
    if (/AUTH.*without any password configured|no password is set/i.test(msg))
      return { kind: 'auth', text: 'a password was given, but this Redis has none set: remove it from the URL' };
    return { kind: 'other', text: `it refused the connection: ${msg}` };
  }
  const known = e?.code ? CONNECT_ERRORS[e.code] : undefined;
  if (known) return known;
  // A TLS failure (a certificate not signed by the CA given, one expired, a plaintext server): Node's own words.
  if (e && (/SSL|TLS|CERT/.test(e.code ?? '') || /certificate|ssl|tls/i.test(msg)))
    return { kind: 'tls', text: `TLS handshake failed: ${msg} (check rediss:// against the server's TLS setup and the CA given)` };
  if (n.connected && !e)
    return {
      kind: 'no-answer',
      text: n.gaveUp
        ? 'it closed the connection before answering: is it a Redis server, plaintext or TLS as the URL says?'
        : `it accepted the connection but did not answer within ${secs}: is it a Redis server, plaintext or TLS as the URL says?`,
    };
  if (e) return { kind: 'other', text: `${n.gaveUp ? 'cannot connect' : 'not reachable'}: ${msg}` };
  return { kind: n.gaveUp ? 'other' : 'timeout', text: n.gaveUp ? 'the connection closed before it was ready' : `not reachable within ${secs}` };
}

/**
 * How long a connection that was away takes to be ready once Redis is back: one step of its
 * reconnect backoff (at most 2 s) and a connect. A producer's commands fail at once while it
 * reconnects, so Redis can answer one connection of a process (a run's blocking reader) while
 * another still waits out its step.
 */
export const RECONNECT_MS = 3000;

/**
 * Whether a Redis failure is the connection's (down, reconnecting) rather than a reply of the
 * server: a refused command (MISCONF, OOM, READONLY, a script error) comes as a ReplyError, also
 * inside a refused MULTI.
 */
export function connectionLost(e: unknown): boolean {
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    if (c.name === 'ReplyError' || (c as { previousErrors?: Error[] }).previousErrors?.some((p) => p.name === 'ReplyError')) return false;
  }
  return e instanceof GaxxError ? e.code === 'REDIS_UNAVAILABLE' : true;
}

/** Resolves when `client` is ready again, after `ms`, or when `stop` aborts, whichever is first. */
async function untilReady(client: Redis | Cluster, ms: number, stop?: AbortSignal): Promise<void> {
  if (client.status === 'ready' || stop?.aborted) {
    // Ready, yet the command failed: a moment before trying again.
    if (!stop?.aborted) await new Promise((r) => setTimeout(r, Math.min(ms, 100)));
    return;
  }
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      client.off('ready', done);
      stop?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    client.once('ready', done);
    stop?.addEventListener('abort', done, { once: true });
  });
}

export interface WhileAwayOptions {
  /** How long from the first failure `op` is tried again; then REDIS_UNAVAILABLE ("redis unreachable for N s"). */
  forMs: number;
  /** What `op` is for, in its errors ("run X", "while enqueueing run X"). */
  what: string;
  /** Stops the trying: the last failure is thrown. */
  stop?: AbortSignal;
  /** Each attempt unanswered this long fails as its connection's request bound would (below it, when shorter). */
  attemptMs?: number;
}

/** `p`, or a failure as ioredis' own command timeout's after `ms` (the request goes on, unobserved). */
async function answeredWithin<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(TIMED_OUT)), ms)));
  p.catch(() => undefined);
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `op`, tried again each time `client` is ready after a failure of its connection (it
 * reconnects by itself), for at most `forMs`: a write that must land once Redis is back (a run's
 * cancel, its record's end) is not lost to a connection still waiting out its backoff. A refusal
 * by the server (a ReplyError) is thrown at once, as REDIS_UNAVAILABLE with `details.refused`.
 * `op` must be safe to repeat: a call whose reply was lost may have been done.
 */
export async function whileAway<T>(client: Redis | Cluster, op: () => Promise<T>, o: WhileAwayOptions): Promise<T> {
  let since = 0;
  for (;;) {
    try {
      return await (o.attemptMs === undefined ? op() : answeredWithin(op(), o.attemptMs));
    } catch (raw) {
      const e = redisError(raw, o.what);
      if (!connectionLost(e)) throw e;
      since ||= Date.now();
      const forMs = Date.now() - since;
      if (o.stop?.aborted) throw e;
      if (forMs >= o.forMs)
        throw o.forMs > 0 ? new GaxxError('REDIS_UNAVAILABLE', `redis unreachable for ${Math.round(forMs / 1000)} s ${o.what}`, { cause: e }) : e;
      await untilReady(client, Math.min(1000, o.forMs - forMs), o.stop);
      if (o.stop?.aborted) throw e;
    }
  }
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
