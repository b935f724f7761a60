/**
 * ioredis' failures as gaxx says them (REDIS_UNAVAILABLE), told apart by their names and messages
 * without loading ioredis: the CLI's error funnel (cli/dispatch.ts) is light, and it turns one no
 * command caught into what it is, a Redis that failed, rather than an internal error.
 */
import { GaxxError } from '../../proto/index.js';

/** The message of ioredis' error for a request its command timeout cut. */
export const TIMED_OUT = 'Command timed out';

/** ioredis' own failures of a connection or a request (not Redis's answers): their messages. */
const CLIENT_FAILURES = new Set([TIMED_OUT, 'Connection is closed.', "Stream isn't writeable and enableOfflineQueue options is false"]);
/** ... and their error classes' names (ReplyError: Redis refused the command). */
const CLIENT_ERROR_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError', 'ReplyError']);

/** Whether `e` is a failure of ioredis (a connection, a request, a refusal by Redis) rather than a bug. */
export function isRedisClientError(e: unknown): boolean {
  return e instanceof Error && !(e instanceof GaxxError) && (CLIENT_FAILURES.has(e.message) || CLIENT_ERROR_NAMES.has(e.name));
}

/** Why a connection never became ready, as REDIS_UNAVAILABLE's `details.reason` says it. */
export type NotReadyKind = 'refused' | 'no-socket' | 'denied' | 'reset' | 'timeout' | 'unreachable' | 'unknown-host' | 'auth' | 'tls' | 'no-answer' | 'other';

/** Node's connect failures, said plainly, with what to check. */
export const CONNECT_ERRORS: Record<string, { kind: NotReadyKind; text: string }> = {
  ECONNREFUSED: { kind: 'refused', text: 'connection refused: is redis-server running there (and on that port)?' },
  ENOENT: { kind: 'no-socket', text: 'no such socket: is redis-server running, with that unixsocket?' },
  EACCES: { kind: 'denied', text: 'permission denied on its socket: check the mode and owner of the socket and its directory' },
  ECONNRESET: {
    kind: 'reset',
    text: 'the connection was reset: is it a Redis server, plaintext or TLS as the URL says, and does it accept clients from here?',
  },
  ETIMEDOUT: { kind: 'timeout', text: 'the connection timed out: is the host up, and does a firewall let the port through?' },
  EHOSTUNREACH: { kind: 'unreachable', text: 'host unreachable: check the address and the network' },
  ENETUNREACH: { kind: 'unreachable', text: 'network unreachable: check the address and the network' },
  ENOTFOUND: { kind: 'unknown-host', text: 'host not found: check the host name in the URL' },
  EAI_AGAIN: { kind: 'unknown-host', text: 'the host name could not be resolved now (DNS): try again, or give an address' },
};

/** What a request its command timeout cut says (the bound is the connection's, RedisSettings.answerMs). */
export const UNANSWERED = 'no answer in time (it keeps the connection but answers nothing: stopped, paused or cut off?); the bound is --redis-timeout-ms';

/** Whether `e` is a request that went unanswered past its connection's command timeout. */
export function unanswered(e: unknown): boolean {
  for (let c: unknown = e; c instanceof Error; c = c.cause) if (c.message === TIMED_OUT) return true;
  return false;
}

/** Turns an ioredis failure into REDIS_UNAVAILABLE; GaxxErrors pass through. */
export function redisError(e: unknown, what: string): GaxxError {
  if (e instanceof GaxxError) return e;
  // A refused MULTI says only EXECABORT; the server's reason (MISCONF, OOM, READONLY...) is in
  // the errors of the commands it queued.
  const inner = (e as { previousErrors?: Error[] } | undefined)?.previousErrors?.[0];
  const reason = inner?.message ?? (e as Error)?.message ?? String(e);
  // An error reply: Redis is there but refuses (details.refused says why, for the caller's advice).
  const replied = (inner ?? (e as Error | undefined))?.name === 'ReplyError';
  const connect = CONNECT_ERRORS[(e as { code?: string } | undefined)?.code ?? ''];
  const text = reason === TIMED_OUT ? UNANSWERED : (connect?.text ?? reason);
  return new GaxxError('REDIS_UNAVAILABLE', `${what}: ${text}`, { cause: e, ...(replied ? { details: { refused: reason } } : {}) });
}
