/**
 * Per-call authorization from the peer certificate that our TLS layer verified against the fleet
 * CA. Never from metadata. One table keyed by gRPC method path says which roles may call what;
 * the call guard (transport/call-guard.ts) applies it to every call of every service before any
 * handler runs, and a method missing from the table is denied. The revocation set is read on
 * every call, so a revoked client is refused on its next call even on an open connection.
 */
import type * as grpc from '@grpc/grpc-js';
import { claimsCa, describeIdentity, identityFromSan, normalizeSerial, type Identity, type Role } from '../../certs/index.js';
import { GaxxError, isGaxxError } from '../../proto/index.js';

const ALL: readonly Role[] = ['operator', 'scheduler'];
const WITH_MONITOR: readonly Role[] = ['operator', 'scheduler', 'monitor'];
const OPERATOR: readonly Role[] = ['operator'];

/**
 * Which roles may call each method. The agent role and anything unknown may call nothing. A new
 * RPC must be added here or it is refused (test/unit/rpc-policy.test.ts walks the services).
 * A scheduler runs only work an operator signed (Exec refuses it anything else) and cancels only
 * that (the Cancel handler checks); files are the operator's alone: a file a scheduler could
 * write into a task's work dir (a script, a Makefile) would run as that signed task, and one it
 * could read (a task's scratch dir) is another task's data. Nothing the scheduler does moves
 * files (certificate renewal writes the cert area with the operator's certificate).
 */
export const RPC_POLICY: Readonly<Record<string, readonly Role[]>> = {
  '/gaxx.agent.v1.Agent/Exec': ALL,
  '/gaxx.agent.v1.Agent/Cancel': ALL,
  '/gaxx.agent.v1.Agent/PutFile': OPERATOR,
  '/gaxx.agent.v1.Agent/GetFile': OPERATOR,
  '/gaxx.agent.v1.Agent/Info': WITH_MONITOR,
  // Renewal writes the cert area, which only operators may.
  '/gaxx.agent.v1.Agent/CreateCsr': OPERATOR,
  '/grpc.health.v1.Health/Check': WITH_MONITOR,
  '/grpc.health.v1.Health/Watch': WITH_MONITOR,
};

/** The metrics listener's one "method": a scrape. */
export const METRICS_SCRAPE = 'GET /metrics';
/** Who may scrape metrics (the metrics listener authorizes with this table). */
export const METRICS_POLICY: Readonly<Record<string, readonly Role[]>> = { [METRICS_SCRAPE]: WITH_MONITOR };

/** Why a call was refused, as the auth-failure metric labels it. */
export type DenyReason = 'no_certificate' | 'bad_identity' | 'ca_certificate' | 'revoked' | 'role';

type AuthContextCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext'>;

export interface Authorizer {
  /** The caller's identity when it may call `method` (a path); throws a GaxxError otherwise. */
  authorize(call: AuthContextCall, method: string): Identity;
  /**
   * The identity of a caller the call guard already authorized (handlers use it for audit and
   * role-dependent behaviour; it decides nothing).
   */
  identity(call: AuthContextCall): Identity;
}

/** The short name of a method path, for logs and metrics: '/pkg.Svc/Exec' -> 'Exec'. */
export function rpcName(method: string): string {
  return method.slice(method.lastIndexOf('/') + 1) || method;
}

function peerIdentity(call: AuthContextCall): Identity {
  const cert = call.getAuthContext().sslPeerCertificate;
  if (!cert) throw new GaxxError('UNAUTHENTICATED', 'no verified client certificate');
  return identityFromSan(cert.subjectaltname);
}

/**
 * An authorizer reading the current revocation set through `revoked()` on every call;
 * `onDenied` observes refusals (metrics, logs).
 */
export function createAuthorizer(revoked: () => ReadonlySet<string>, onDenied: (reason: DenyReason, rpc: string) => void, policy = RPC_POLICY): Authorizer {
  const deny = (reason: DenyReason, method: string, err: GaxxError): never => {
    onDenied(reason, rpcName(method));
    throw err;
  };
  return {
    authorize(call, method) {
      const cert = call.getAuthContext().sslPeerCertificate;
      if (!cert) return deny('no_certificate', method, new GaxxError('UNAUTHENTICATED', 'no verified client certificate'));
      // A CA certificate (basicConstraints CA:TRUE) could sign identities of its own: never a client.
      if (cert.ca || claimsCa(cert.raw))
        return deny('ca_certificate', method, new GaxxError('CERT_INVALID', 'client certificate is a CA certificate (CA:TRUE)'));
      let id: Identity;
      try {
        id = identityFromSan(cert.subjectaltname);
      } catch (e) {
        if (!isGaxxError(e)) throw e;
        return deny('bad_identity', method, new GaxxError('CERT_INVALID', 'client certificate names no single known gaxx role'));
      }
      if (revoked().has(normalizeSerial(cert.serialNumber))) {
        return deny('revoked', method, new GaxxError('CERT_REVOKED', 'client certificate is revoked'));
      }
      const roles = Object.hasOwn(policy, method) ? policy[method] : undefined;
      if (!roles?.includes(id.role)) {
        return deny('role', method, new GaxxError('PERMISSION_DENIED', `${describeIdentity(id)} may not call ${rpcName(method)}`));
      }
      return id;
    },
    identity: peerIdentity,
  };
}
