/** The agent client's failures as GaxxErrors: the agent's own code from its trailer, a refused identity, or the transport's reason said plainly. */
import type * as grpc from '@grpc/grpc-js';
import {
  ERROR_CODE_METADATA_KEY,
  NOT_STARTED_METADATA_KEY,
  REFUSAL_METADATA_KEY,
  RETRY_AFTER_METADATA_KEY,
  GaxxError,
  GrpcStatus,
  errorFromGrpc,
} from '../../proto/index.js';

/**
 * A connection that never reached an agent, said plainly: refused, unreachable, or a TLS
 * handshake that failed (the grpc/OpenSSL text stays in the cause).
 */
function transportError(se: Partial<grpc.ServiceError>, address: string): GaxxError {
  const d = `${se.details ?? ''} ${se.message ?? ''}`;
  let why = 'it did not answer';
  if (/ECONNREFUSED/.test(d)) why = 'connection refused: is gaxx-agent running and listening on that port?';
  else if (/EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|ENOTFOUND|EAI_AGAIN/.test(d)) why = 'the host cannot be reached from here (address, DNS or firewall)';
  else if (/SSL|TLS|handshake|certificate|alert/i.test(d))
    why =
      "the TLS handshake failed: it is not an agent of this fleet's CA, it refused our certificate (revoked or expired?), or it closed the connection at once (too many connections from this address, or the address is blocked: see its audit log)";
  else if (/ECONNRESET|socket hang up|closed/i.test(d))
    why = 'the connection was closed: the agent stopped or restarted, it blocks this address, or it is not a gaxx-agent';
  return new GaxxError('UNAVAILABLE', `no gaxx-agent answering at ${address}: ${why}`, { cause: se });
}

/**
 * Any failure of a call to the agent at `address` as a GaxxError: the agent's trailer code, the
 * pinned-identity refusal of the last handshake (`identityError`), or the transport's.
 */
export function agentError(e: unknown, address: string, identityError: GaxxError | undefined): GaxxError {
  if (e instanceof GaxxError) return e;
  const se = e as Partial<grpc.ServiceError> | null;
  if (!se || typeof se.code !== 'number') return new GaxxError('UNAVAILABLE', `agent ${address}: ${String(e)}`, { cause: e });
  // The refusal's text reaches us inside the transport error; match it so a later, unrelated
  // outage is not reported as a mismatch.
  if (se.code === GrpcStatus.UNAVAILABLE && identityError && (se.details ?? '').includes(identityError.message)) return identityError;
  const trailer = se.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
  if (se.code === GrpcStatus.UNAVAILABLE && trailer === undefined) return transportError(se, address);
  // The agent's side reset the call (grpc-js says 'Call cancelled'; one this client cancelled is
  // 'Cancelled on client'): an agent shutting down ends its calls so. Not the user's interrupt
  // (CANCELLED, exit 130): the agent went away mid-call.
  if (se.code === GrpcStatus.CANCELLED && trailer === undefined && se.details === 'Call cancelled')
    return new GaxxError('UNAVAILABLE', `agent ${address} ended the call: the agent stopped or restarted`, { cause: se });
  // grpc-js appends an empty "Resolution note:" to transport errors; it only adds noise.
  const details = (se.details ?? se.message ?? '').replace(/\.? ?Resolution note: *$/, '');
  const mapped = errorFromGrpc(se.code, `agent ${address}: ${details}`, typeof trailer === 'string' ? trailer : undefined);
  // The agent's retry hint and what is exhausted (RESOURCE_EXHAUSTED) travel on as details the
  // retry policy reads, and so does its word that the task never started there (it could not set
  // it up).
  const hint = Number(se.metadata?.get(RETRY_AFTER_METADATA_KEY)[0] ?? NaN);
  const refusal = se.metadata?.get(REFUSAL_METADATA_KEY)[0];
  const notStarted = trailer !== undefined && se.metadata?.get(NOT_STARTED_METADATA_KEY)[0] !== undefined;
  const said = {
    ...(Number.isFinite(hint) ? { retryAfterMs: hint } : {}),
    ...(typeof refusal === 'string' && refusal ? { refusal: refusal.slice(0, 64) } : {}),
    ...(notStarted ? { notStarted: true } : {}),
  };
  return new GaxxError(mapped.code, mapped.message, { cause: e, ...(Object.keys(said).length ? { details: said } : {}) });
}
