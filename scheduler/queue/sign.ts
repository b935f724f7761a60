/**
 * Signed work, the queue side. At enqueue, the operator's key signs each task's spec (the
 * canonical encoding of proto/signed-task.ts); the job carries the signature and the operator's
 * certificate; the worker refuses an unsigned, altered or expired job before it dispatches
 * anything, and forwards the signature with each Exec. The agent does the full check (chain to
 * the fleet CA, revocation, operator role, signed after its fleet was created, task id, target):
 * the worker's is only the early one, so a refused job fails at once with a clear code instead of
 * on every agent.
 */
import type { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { parseCertificateCached } from '../../certs/index.js';
import { GaxxError, sha256Hex, signTaskFields, verifyTaskSignature, type SignedTask, type SignedTaskFields, type TaskSigner } from '../../proto/index.js';

/** How long a signed task stays valid when the caller names no expiry: a day. */
export const DEFAULT_SIGNED_TTL_MS = 24 * 3600 * 1000;

/** The signature block a job carries in Redis. */
export const SignedBlockSchema = z
  .object({
    // A job of a gaxx that signs another version (v1 had no signing time) is refused saying so.
    v: z.literal(2, { errorMap: () => ({ message: 'signed by a gaxx of another version (this one signs v2): enqueue the run again with this version' }) }),
    expiresAtUnixMs: z.number().int().positive(),
    /** When the operator signed (this controller's clock); agents of a fleet created later refuse it. */
    signedAtUnixMs: z.number().int().positive(),
    /** sha256 of the stdin the task sends (inline stdin or its run input). */
    stdinSha256: z.string().regex(/^[0-9a-f]{64}$/, 'lower-case hex sha256'),
    signature: z.string().base64().min(1).max(4096),
    signerCertPem: z
      .string()
      .min(1)
      .max(16 * 1024),
  })
  .strict();

export type SignedBlock = z.output<typeof SignedBlockSchema>;

/** The parts of a task the signature covers (a TaskSpec, or a task being enqueued). */
export interface SignableTask {
  runId: string;
  taskId: string;
  fleet?: string | undefined;
  agents?: string[] | undefined;
  target: { host: string } | { any: true };
  argv: string[];
  env: Record<string, string>;
  timeoutMs?: number | undefined;
  workDir?: string | undefined;
  outputCapBytes: number;
  retry: { attempts: number; retryOnFailure: boolean };
}

/** Executions a task may have: one, or one per attempt with retry-on-failure. */
export function maxRoundsOf(retry: SignableTask['retry']): number {
  return retry.retryOnFailure ? retry.attempts : 1;
}

/** The fields of a signature block that the signature covers. */
export type SignedBlockFields = Pick<SignedBlock, 'stdinSha256' | 'expiresAtUnixMs' | 'signedAtUnixMs'>;

/** When a run's tasks are signed and until when the signatures hold (defaults: now, and a day later). */
export interface SigningTimes {
  signedAtUnixMs?: number | undefined;
  expiresAtUnixMs?: number | undefined;
}

/** The signed fields of a task, as the Exec the worker builds for it will state them. */
export function signedFieldsOf(t: SignableTask, s: SignedBlockFields): SignedTaskFields {
  return {
    runId: t.runId,
    taskId: t.taskId,
    argv: t.argv,
    env: t.env,
    stdinSha256: s.stdinSha256,
    // Empty: a fresh scratch dir, as the worker then asks for none.
    workDir: t.workDir ?? '',
    timeoutMs: t.timeoutMs ?? 0,
    outputCapBytes: t.outputCapBytes,
    target: { fleet: t.fleet ?? '', host: 'host' in t.target ? t.target.host : '', agents: t.agents ?? [] },
    maxRounds: maxRoundsOf(t.retry),
    expiresAtUnixMs: s.expiresAtUnixMs,
    signedAtUnixMs: s.signedAtUnixMs,
  };
}

/** Signs one task whose stdin will be `stdin`, at `signedAtUnixMs` (default now). */
export function signTask(t: SignableTask, stdin: Buffer, signer: TaskSigner, expiresAtUnixMs: number, signedAtUnixMs = Date.now()): SignedBlock {
  const times = { stdinSha256: sha256Hex(stdin), expiresAtUnixMs, signedAtUnixMs };
  const signature = signTaskFields(signedFieldsOf(t, times), signer);
  return { v: 2, ...times, signature: signature.toString('base64'), signerCertPem: signer.certPem };
}

/**
 * The worker's early check of a job read back from Redis: UNSIGNED_TASK without a signature,
 * SIGNATURE_INVALID when it does not cover the job's fields (or inline stdin), SIGNATURE_EXPIRED
 * past its expiry. Returns the block for the Exec requests.
 */
export function checkJobSignature(t: SignableTask & { signed?: SignedBlock | undefined; stdin?: string | undefined }, nowMs = Date.now()): SignedBlock {
  const s = t.signed;
  if (!s) throw new GaxxError('UNSIGNED_TASK', `job ${t.runId}-${t.taskId} carries no operator signature; only work an operator signed is dispatched`);
  let cert: X509Certificate;
  try {
    cert = parseCertificateCached(s.signerCertPem);
  } catch (e) {
    throw new GaxxError('SIGNATURE_INVALID', `job ${t.runId}-${t.taskId}: the signer certificate is not a certificate`, { cause: e });
  }
  const inlineOk = t.stdin === undefined || sha256Hex(Buffer.from(t.stdin, 'base64')) === s.stdinSha256;
  if (!inlineOk || !verifyTaskSignature(signedFieldsOf(t, s), Buffer.from(s.signature, 'base64'), cert.publicKey)) {
    throw new GaxxError('SIGNATURE_INVALID', `job ${t.runId}-${t.taskId}: the signature does not cover the job as stored (altered after signing)`);
  }
  if (nowMs > s.expiresAtUnixMs) {
    throw new GaxxError('SIGNATURE_EXPIRED', `job ${t.runId}-${t.taskId}: the signature expired at ${new Date(s.expiresAtUnixMs).toISOString()}`);
  }
  return s;
}

/** The SignedTask of an Exec request for a signed job. */
export function signedTaskOf(t: SignableTask, s: SignedBlock): SignedTask {
  const f = signedFieldsOf(t, s);
  return {
    runId: f.runId,
    taskId: f.taskId,
    target: f.target,
    expiresAtUnixMs: f.expiresAtUnixMs,
    maxRounds: f.maxRounds,
    signature: Buffer.from(s.signature, 'base64'),
    signerCertPem: s.signerCertPem,
    signedAtUnixMs: f.signedAtUnixMs,
  };
}
