/**
 * Per-call authorization from the peer certificate that our TLS layer verified against the fleet
 * CA. Never from metadata. The revocation set is read on every call, so a revoked client is
 * refused on its next call even on an open connection.
 */
import type * as grpc from '@grpc/grpc-js';
import { describeIdentity, identityFromSan, normalizeSerial, type Identity } from '../../certs/index.js';
import { GaxxError, isGaxxError } from '../../proto/index.js';

/** The RPCs the agent serves, as the policy names them. */
export type Rpc = 'Exec' | 'Cancel' | 'PutFile' | 'GetFile' | 'Info' | 'Health';

/** Which role may call what. The agent role and anything unknown may call nothing. */
const POLICY: Record<string, ReadonlySet<Rpc>> = {
  operator: new Set<Rpc>(['Exec', 'Cancel', 'PutFile', 'GetFile', 'Info', 'Health']),
  scheduler: new Set<Rpc>(['Exec', 'Cancel', 'PutFile', 'GetFile', 'Info', 'Health']),
  monitor: new Set<Rpc>(['Info', 'Health']),
};

/** Why a call was refused, as the auth-failure metric labels it. */
export type DenyReason = 'no_certificate' | 'bad_identity' | 'revoked' | 'role';

export interface Authorizer {
  /** The caller's identity when it may call `rpc`; throws a GaxxError otherwise. */
  authorize(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext'>, rpc: Rpc): Identity;
}

/**
 * An authorizer reading the current revocation set through `revoked()` on every call;
 * `onDenied` observes refusals (metrics, logs).
 */
export function createAuthorizer(revoked: () => ReadonlySet<string>, onDenied: (reason: DenyReason, rpc: Rpc) => void): Authorizer {
  const deny = (reason: DenyReason, rpc: Rpc, err: GaxxError): never => {
    onDenied(reason, rpc);
    throw err;
  };
  return {
    authorize(call, rpc) {
      const cert = call.getAuthContext().sslPeerCertificate;
      if (!cert) return deny('no_certificate', rpc, new GaxxError('UNAUTHENTICATED', 'no verified client certificate'));
      let id: Identity;
      try {
        id = identityFromSan(cert.subjectaltname);
      } catch (e) {
        if (!isGaxxError(e)) throw e;
        return deny('bad_identity', rpc, new GaxxError('CERT_INVALID', 'client certificate names no single known gaxx role'));
      }
      if (revoked().has(normalizeSerial(cert.serialNumber))) {
        return deny('revoked', rpc, new GaxxError('CERT_REVOKED', 'client certificate is revoked'));
      }
      if (!POLICY[id.role]?.has(rpc)) {
        return deny('role', rpc, new GaxxError('PERMISSION_DENIED', `${describeIdentity(id)} may not call ${rpc}`));
      }
      return id;
    },
  };
}
