/**
 * Per-call guards as one grpc-js server interceptor, so every service (Agent and Health) gets
 * them the same way: a blocked address is refused, the optional bearer token is checked (and
 * stripped from the metadata handlers see), the RPC policy table decides whether the caller's
 * role may call the method, the caller's identity spends a rate-limit token, the
 * peer takes a concurrent-call slot (given back when the call ends however it ends); many calls
 * refused by these two limits get the address blocked. A call refused at admission
 * (UNAUTHENTICATED or PERMISSION_DENIED: no or a wrong token, a certificate without a valid
 * identity, a CA or revoked one, a role the policy does not admit to the method) counts as an
 * authorization failure of the peer address for the block list. A call the policy admitted and
 * its handler refused (signed work that does not hold, PATH_ESCAPE, a path in the agent's own
 * area) is reported (`denied`) but counts not: it refuses the request, not the caller, and work
 * read from the queue is not the caller's to vouch for (a few bad jobs written into Redis must not
 * get the honest scheduler blocked on every agent).
 */
import * as grpc from '@grpc/grpc-js';
import { identityFromSan, normalizeSerial, describeIdentity } from '../../certs/index.js';
import { ERROR_CODE_METADATA_KEY, REFUSAL_METADATA_KEY, RETRY_AFTER_METADATA_KEY, grpcStatusFor, isGaxxError, type ErrorCode } from '../../proto/index.js';
import type { PeerBlocker } from './blocklist.js';
import { peerAddress, type Release, type StreamLimiter } from './conn-limits.js';
import type { RateLimiter } from './rate-limit.js';
import { presentedToken, type BearerToken } from '../auth/secrets.js';

/** Trailer carrying how long a rate-limited caller should wait before retrying. */
export { RETRY_AFTER_METADATA_KEY };

/** The caller of one call, as far as the transport knows it. */
export interface Caller {
  peer: string;
  /** `operator alice`, or undefined when the certificate names no valid identity. */
  identity: string | undefined;
  serial: string | undefined;
  method: string;
}

/** What the call guard reports; metrics, audit and logs subscribe. */
export interface CallGuardEvents {
  rateLimited?(caller: Caller, retryAfterMs: number): void;
  streamRefused?(caller: Caller): void;
  /** A call ended UNAUTHENTICATED or PERMISSION_DENIED (code: the gaxx error code). */
  denied?(caller: Caller, code: string): void;
}

export interface CallGuardDeps {
  limiter: RateLimiter;
  streams: StreamLimiter;
  blocker: PeerBlocker;
  /** The bearer token required on every call, if one is configured. */
  token?: BearerToken | undefined;
  /**
   * The RPC policy (auth/auth.ts): throws a GaxxError when the caller may not call `method`.
   * Applied to every call of every service before its handler runs.
   */
  authorize(call: grpc.ServerInterceptingCallInterface, method: string): unknown;
  events?: CallGuardEvents;
}

/** A status as interceptors send it. */
type PartialStatus = { code: grpc.status; details: string; metadata?: grpc.Metadata | null };

const DENIALS = new Set<number>([grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED]);

function callerOf(call: grpc.ServerInterceptingCallInterface, method: string): Caller & { key: string } {
  const peer = peerAddress(call.getPeer());
  const cert = call.getAuthContext().sslPeerCertificate;
  let identity: string | undefined;
  try {
    identity = cert ? describeIdentity(identityFromSan(cert.subjectaltname)) : undefined;
  } catch {
    identity = undefined;
  }
  const serial = cert?.serialNumber ? normalizeSerial(cert.serialNumber) : undefined;
  // Rate limits follow the identity (renewed certificates share it); without one, the address.
  return { peer, identity, serial, method, key: identity ?? `address ${peer}` };
}

function refusal(code: ErrorCode, details: string, extra: Record<string, string> = {}): PartialStatus {
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_METADATA_KEY, code);
  for (const [k, v] of Object.entries(extra)) metadata.set(k, v);
  return { code: grpcStatusFor(code), details, metadata };
}

/** Checks one call at its start; a refusal status, or the slot to give back at its end. */
function admit(call: grpc.ServerInterceptingCallInterface, md: grpc.Metadata, caller: Caller & { key: string }, d: CallGuardDeps): PartialStatus | Release {
  if (d.blocker.isBlocked(caller.peer)) return refusal('UNAVAILABLE', 'address temporarily blocked after repeated failures');
  if (d.token) {
    const auth = md.get('authorization')[0];
    md.remove('authorization');
    if (!d.token.matches(presentedToken(typeof auth === 'string' ? auth : undefined))) {
      return refusal('UNAUTHENTICATED', 'missing or wrong bearer token');
    }
  }
  try {
    d.authorize(call, caller.method);
  } catch (e) {
    if (!isGaxxError(e)) throw e;
    return refusal(e.code, e.message);
  }
  const taken = d.limiter.take(caller.key);
  if (!taken.ok) {
    d.events?.rateLimited?.(caller, taken.retryAfterMs);
    d.blocker.recordFailure(caller.peer, 'over_limit');
    return refusal('RESOURCE_EXHAUSTED', `rate limit exceeded; retry in ${taken.retryAfterMs} ms`, {
      [RETRY_AFTER_METADATA_KEY]: String(taken.retryAfterMs),
      [REFUSAL_METADATA_KEY]: 'rate-limit',
    });
  }
  const release = d.streams.tryOpen(caller.peer);
  if (!release) {
    d.events?.streamRefused?.(caller);
    d.blocker.recordFailure(caller.peer, 'over_limit');
    return refusal('RESOURCE_EXHAUSTED', 'too many concurrent calls from this address', { [REFUSAL_METADATA_KEY]: 'calls' });
  }
  return release;
}

/** Reports a denial; `atAdmission`: the caller's credentials were refused, which counts toward blocking its address. */
function onDenied(status: PartialStatus, caller: Caller, d: CallGuardDeps, atAdmission: boolean): void {
  if (!DENIALS.has(status.code)) return;
  const code = status.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
  d.events?.denied?.(caller, typeof code === 'string' ? code : String(grpc.status[status.code]));
  if (atAdmission) d.blocker.recordFailure(caller.peer, 'auth');
}

/** The interceptor to pass in `new grpc.Server({ interceptors: [...] })`. */
export function callGuardInterceptor(d: CallGuardDeps): grpc.ServerInterceptor {
  return (method, call) => {
    const caller = callerOf(call, method.path);
    let release: Release | undefined;
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(md, mdNext) {
            const verdict = admit(call, md, caller, d);
            if (typeof verdict === 'function') {
              release = verdict;
              mdNext(md);
              return;
            }
            onDenied(verdict, caller, d, true);
            call.sendStatus(verdict);
          },
          onCancel() {
            release?.();
          },
        });
      },
      sendStatus(status, next) {
        release?.();
        // Admitted: the handler refused the request (an admission refusal is sent above, not here).
        if (release !== undefined) onDenied(status, caller, d, false);
        next(status);
      },
    });
  };
}
