/**
 * Signed work, the agent side: an Exec from a scheduler runs only what an operator signed. Before
 * anything runs (or is attached to, or replayed), the request's own argv, env, stdin digest, work
 * dir, timeout and output cap, with the signed run id, task id, target, rounds, expiry and signing time, are
 * encoded canonically (proto/signed-task.ts) and checked against the signature, in this order:
 *
 * 1. a signed block is present (UNSIGNED_TASK);
 * 2. the signer certificate chains to the fleet CA, is in its validity window, is no CA and is
 *    not revoked (SIGNER_UNTRUSTED): crypto.X509Certificate, never node-forge;
 * 3. it names exactly one URI SAN, the operator role (SIGNER_NOT_OPERATOR);
 * 4. the signature verifies with its key (SIGNATURE_INVALID);
 * 5. the expiry has not passed (SIGNATURE_EXPIRED);
 * 6. with --fleet-since, it was signed no earlier than this agent's fleet was created
 *    (SIGNED_BEFORE_FLEET): a fleet re-created under an old name has new certificates naming that
 *    name and an empty spent-id journal, and would otherwise run the old fleet's work again;
 * 7. the request's task id is one the signature allows (TASK_ID_MISMATCH): no replay of a signed
 *    spec under another task id, and no more rounds than signed;
 * 8. this agent is the signed target (TARGET_MISMATCH).
 *
 * An operator calling Exec directly is authenticated by its own mTLS identity and needs no
 * signature. Every request, signed or not, gets a digest of its spec: the task registry replays
 * a stored result only to a request with the same digest.
 */
import type { X509Certificate } from 'node:crypto';
import type { AuditLog } from '../audit/audit.js';
import { argv0Of, argvSha256 } from '../audit/audit-events.js';
import { isIP } from 'node:net';
import { describeIdentity, identityFromSan, normalizeSerial, parseCertificateCached, verifyLeaf, type CertBundle, type Identity } from '../../certs/index.js';
import {
  execIdAllowed,
  GaxxError,
  isGaxxError,
  sha256Hex,
  taskSpecDigest,
  verifyTaskSignature,
  type ExecRequest__Output,
  type SignedTaskFields,
  type SignedTask__Output,
} from '../../proto/index.js';

/** What the check needs to know about this agent, read at each call (rotation may change it). */
export interface SignedWorkContext {
  bundle(): CertBundle;
  /** The port the agent's gRPC listener is bound to. */
  port(): number;
  /** When this agent's fleet was created (Unix ms, the controller's clock); unset: no such check. */
  fleetSince?: number | undefined;
  now?(): number;
}

/** A request that passed: its spec digest, and the signer when it was signed work. */
export interface CheckedExec {
  digest: string;
  /** Signed work: when its signature expires (ms); its task id runs once here until then. */
  expiresAtUnixMs?: number;
  signer: Identity | undefined;
}

/** The signed fields as this request states them (its own argv, env, stdin...). */
export function fieldsOfRequest(req: ExecRequest__Output, signed: SignedTask__Output | null): SignedTaskFields {
  return {
    runId: signed?.runId ?? '',
    taskId: signed?.taskId ?? '',
    argv: req.argv,
    env: req.env,
    stdinSha256: sha256Hex(req.stdin),
    workDir: req.workDir,
    timeoutMs: req.timeoutMs,
    outputCapBytes: req.outputCapBytes,
    target: { fleet: signed?.target?.fleet ?? '', host: signed?.target?.host ?? '', agents: signed?.target?.agents ?? [] },
    maxRounds: signed?.maxRounds ?? 0,
    expiresAtUnixMs: signed?.expiresAtUnixMs ?? 0,
    signedAtUnixMs: signed?.signedAtUnixMs ?? 0,
  };
}

/** The signer's identity when its certificate is one this fleet trusts to sign work. */
function trustedSigner(pem: string, bundle: CertBundle, now: Date): { id: Identity; cert: X509Certificate } {
  let cert: X509Certificate;
  try {
    cert = parseCertificateCached(pem);
  } catch (e) {
    throw new GaxxError('SIGNER_UNTRUSTED', 'the signer certificate is not a PEM certificate', { cause: e });
  }
  try {
    verifyLeaf(cert, bundle.cas, now);
  } catch (e) {
    if (!isGaxxError(e)) throw e;
    throw new GaxxError('SIGNER_UNTRUSTED', `the signer certificate is not trusted: ${e.message}`, { cause: e });
  }
  if (bundle.revoked.has(normalizeSerial(cert.serialNumber))) {
    throw new GaxxError('SIGNER_UNTRUSTED', `the signer certificate ${normalizeSerial(cert.serialNumber)} is revoked`);
  }
  let id: Identity;
  try {
    id = identityFromSan(cert.subjectAltName);
  } catch (e) {
    throw new GaxxError('SIGNER_NOT_OPERATOR', 'the signer certificate names no single gaxx role', { cause: e });
  }
  if (id.role !== 'operator') throw new GaxxError('SIGNER_NOT_OPERATOR', `work is signed by ${describeIdentity(id)}, not an operator`);
  return { id, cert };
}

/** An IP in one spelling (IPv6 compressed, lower case), or a DNS name in lower case. */
function normalHost(host: string): string {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (isIP(h) === 6) return new URL(`http://[${h}]`).hostname.replace(/^\[|\]$/g, '');
  return h;
}

/** Whether `address` (host:port) reaches this agent: its port, and a name or IP its certificate holds. */
export function addressIsSelf(address: string, bundle: CertBundle, port: number): boolean {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(address);
  if (!m || Number(m[2]) !== port) return false;
  const host = normalHost(m[1] as string);
  const names = [...bundle.summary.dns, ...bundle.summary.ips].map(normalHost);
  return names.includes(host);
}

/** Whether this agent is the signed target. */
function targetIsSelf(f: SignedTaskFields, ctx: SignedWorkContext): boolean {
  const b = ctx.bundle();
  const self = b.summary.identity;
  const t = f.target;
  if (t.fleet !== '') {
    return self.role === 'agent' && self.fleet === t.fleet && (t.host === '' || self.host === t.host);
  }
  const candidates = t.host !== '' ? [t.host] : t.agents;
  return candidates.some((a) => addressIsSelf(a, b, ctx.port()));
}

/**
 * SIGNED_BEFORE_FLEET when work was signed before `fleetSince`: both times are the controller's
 * clock (the fleet's creation in its state, the signing at enqueue), so the agent's own clock
 * plays no part.
 */
function refuseSignedBeforeFleet(signedAtMs: number, fleetSince: number | undefined): void {
  if (fleetSince === undefined || signedAtMs >= fleetSince) return;
  throw new GaxxError(
    'SIGNED_BEFORE_FLEET',
    `the task was signed at ${new Date(signedAtMs).toISOString()}, before this fleet was created at ${new Date(fleetSince).toISOString()}: ` +
      'a replay of work of an earlier fleet of that name, or a run enqueued before the fleet was spawned; enqueue it again',
  );
}

/** Verifies a signed request (see the module comment); throws the first failed check's code. */
export function verifySignedExec(req: ExecRequest__Output, ctx: SignedWorkContext): CheckedExec {
  const s = req.signed;
  if (!s || s.signature.length === 0 || s.signerCertPem === '') {
    throw new GaxxError('UNSIGNED_TASK', 'a scheduler may only run work an operator signed; this request carries no signature');
  }
  const nowMs = ctx.now?.() ?? Date.now();
  const bundle = ctx.bundle();
  const signer = trustedSigner(s.signerCertPem, bundle, new Date(nowMs));
  const fields = fieldsOfRequest(req, s);
  if (!verifyTaskSignature(fields, s.signature, signer.cert.publicKey)) {
    throw new GaxxError(
      'SIGNATURE_INVALID',
      `the signature of ${describeIdentity(signer.id)} does not cover this request (altered or signed for something else)`,
    );
  }
  if (nowMs > fields.expiresAtUnixMs) {
    throw new GaxxError('SIGNATURE_EXPIRED', `the signed task expired at ${new Date(fields.expiresAtUnixMs).toISOString()}`);
  }
  refuseSignedBeforeFleet(fields.signedAtUnixMs, ctx.fleetSince);
  if (!execIdAllowed(req.taskId, fields.runId, fields.taskId, fields.maxRounds)) {
    throw new GaxxError('TASK_ID_MISMATCH', `task id ${req.taskId} is not one the signature allows for task ${fields.runId}/${fields.taskId}`);
  }
  if (!targetIsSelf(fields, ctx)) {
    throw new GaxxError('TARGET_MISMATCH', 'this agent is not the target the operator signed for');
  }
  return { digest: taskSpecDigest(fields), signer: signer.id, expiresAtUnixMs: fields.expiresAtUnixMs };
}

/**
 * The check for one Exec by `caller`: schedulers must present signed work; an operator is
 * trusted by its own certificate (a signed block it sends is still checked). Both get a digest.
 */
export function checkExec(req: ExecRequest__Output, caller: Identity, ctx: SignedWorkContext): CheckedExec {
  if (caller.role === 'scheduler' || req.signed) return verifySignedExec(req, ctx);
  return { digest: taskSpecDigest(fieldsOfRequest(req, null)), signer: undefined };
}

/** Audits a refused Exec: who, the task id, argv[0] and the argv hash, the code; never the arguments. */
export function auditExecRefusal(audit: AuditLog | undefined, who: { peer: string; identity: string }, req: ExecRequest__Output, code: string): void {
  audit?.write({
    event: 'exec_refused',
    ...who,
    taskId: req.taskId.slice(0, 128),
    argv0: argv0Of(req.argv),
    argvSha256: argvSha256(req.argv),
    code,
    ...(req.signed?.runId ? { signedTask: `${req.signed.runId}/${req.signed.taskId}`.slice(0, 260) } : {}),
  });
}

/** checkExec, with a refusal audited before it is thrown. */
export function admitExec(
  req: ExecRequest__Output,
  caller: Identity,
  ctx: SignedWorkContext,
  audit: AuditLog | undefined,
  who: { peer: string; identity: string },
): CheckedExec {
  try {
    return checkExec(req, caller, ctx);
  } catch (e) {
    if (isGaxxError(e)) auditExecRefusal(audit, who, req, e.code);
    throw e;
  }
}
