/**
 * Signed work: the one canonical encoding of what an operator signs for a queued task, shared by
 * the scheduler (which signs at enqueue and forwards) and the agent (which verifies before it
 * runs anything). The queue is not a trust root: a job written into Redis by hand can dispatch
 * only what an operator signed.
 *
 * Encoding (version 2): the UTF-8 bytes of `gaxx-signed-task-v2\n` followed by the canonical
 * JSON of the fields below. Canonical JSON here is: objects with their keys sorted by UTF-16 code
 * unit order (JavaScript's default sort), no whitespace, strings as JSON.stringify writes them,
 * numbers only as non-negative safe integers in decimal, arrays in order. Nothing else (no
 * floats, booleans, nulls or undefined) may appear, so two honest encoders always agree.
 * Version 2 added `signedAtUnixMs`, and the context and `v` changed with it: an agent of either
 * version refuses the other's signatures (SIGNATURE_INVALID) rather than read them without it.
 *
 * The signature is made with the operator certificate's key: RSA PKCS#1 v1.5 or ECDSA over
 * SHA-256, or Ed25519 over the bytes themselves (Node's crypto.sign picks by key type).
 */
import type { KeyObject } from 'node:crypto';
import { nodeCrypto } from './builtins.js';
import { GaxxError } from './errors.js';

/** Domain separation: these bytes can never be mistaken for another gaxx signature's payload. */
export const SIGNED_TASK_CONTEXT = 'gaxx-signed-task-v2';

/** Which agent may run a task (see TaskTarget in agent.proto). */
export interface SignedTarget {
  /** The fleet the agent's certificate must name; '' for a fleet-less run. */
  fleet: string;
  /** Fleet run: the agent's host name, '' for any. Fleet-less: the pinned `host:port`, '' for any of `agents`. */
  host: string;
  /** Fleet-less runs: the agent addresses (`host:port`) the task may go to. */
  agents: string[];
}

/** Everything covered by a task signature. */
export interface SignedTaskFields {
  runId: string;
  /** The task id inside the run (the agent-side exec id is derived from runId and this). */
  taskId: string;
  argv: string[];
  env: Record<string, string>;
  /** Lower-case hex sha256 of the exact stdin bytes (of the empty string when none). */
  stdinSha256: string;
  /** '' for a fresh per-task work dir. */
  workDir: string;
  /** 0: the agent's default. */
  timeoutMs: number;
  /** 0: the agent's default. */
  outputCapBytes: number;
  target: SignedTarget;
  /** Executions the operator allowed (1, or the attempts of retry-on-failure). */
  maxRounds: number;
  expiresAtUnixMs: number;
  /**
   * When the operator signed, by the controller's clock: an agent of a fleet refuses work signed
   * before the fleet was created (a replay of an earlier fleet's work under the same name).
   */
  signedAtUnixMs: number;
}

/** Lower-case hex sha256 of `data`. */
export function sha256Hex(data: Buffer | Uint8Array | string): string {
  return nodeCrypto().createHash('sha256').update(data).digest('hex');
}

/** Canonical JSON (see the module comment); INVALID_ARGUMENT for a value it cannot encode. */
export function canonicalJson(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new GaxxError('INVALID_ARGUMENT', `signed fields hold only non-negative integers, not ${value}`);
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  throw new GaxxError('INVALID_ARGUMENT', `signed fields cannot hold a ${value === null ? 'null' : typeof value}`);
}

/** The exact bytes that are signed for `f`. Only the listed fields count, whatever else `f` holds. */
export function canonicalTaskBytes(f: SignedTaskFields): Buffer {
  const fields = {
    v: 2,
    runId: f.runId,
    taskId: f.taskId,
    argv: f.argv,
    env: f.env,
    stdinSha256: f.stdinSha256,
    workDir: f.workDir,
    timeoutMs: f.timeoutMs,
    outputCapBytes: f.outputCapBytes,
    target: { fleet: f.target.fleet, host: f.target.host, agents: f.target.agents },
    maxRounds: f.maxRounds,
    expiresAtUnixMs: f.expiresAtUnixMs,
    signedAtUnixMs: f.signedAtUnixMs,
  };
  return Buffer.from(`${SIGNED_TASK_CONTEXT}\n${canonicalJson(fields)}`, 'utf8');
}

/** sha256 (hex) of the canonical encoding: two requests are the same signed spec iff these match. */
export function taskSpecDigest(f: SignedTaskFields): string {
  return sha256Hex(canonicalTaskBytes(f));
}

/** The digest algorithm Node's sign/verify need for a key: none for Ed25519/Ed448 (they hash themselves). */
function digestFor(key: KeyObject): string | null {
  const t = key.asymmetricKeyType;
  return t === 'ed25519' || t === 'ed448' ? null : 'sha256';
}

/** Who signs queued tasks: the operator's certificate (PEM) and its key. */
export interface TaskSigner {
  certPem: string;
  sign(data: Buffer): Buffer;
}

/** A signer from an operator's certificate and private key (PEM). */
export function createTaskSigner(certPem: string | Buffer, keyPem: string | Buffer): TaskSigner {
  const { createPrivateKey, sign } = nodeCrypto();
  const key = createPrivateKey(keyPem);
  return { certPem: certPem.toString(), sign: (data) => sign(digestFor(key), data, key) };
}

/** Signs `f` with `signer`: the signature over canonicalTaskBytes(f). */
export function signTaskFields(f: SignedTaskFields, signer: TaskSigner): Buffer {
  return signer.sign(canonicalTaskBytes(f));
}

/** True when `signature` is `publicKey`'s signature over the canonical encoding of `f`. */
export function verifyTaskSignature(f: SignedTaskFields, signature: Buffer, publicKey: KeyObject): boolean {
  try {
    return nodeCrypto().verify(digestFor(publicKey), canonicalTaskBytes(f), publicKey, signature);
  } catch {
    // A malformed signature (wrong length for the key, bad DER) is simply not valid.
    return false;
  }
}

/** The agent-side task id of a signed task's execution: round 0 is `<runId>-<taskId>`, then `.r<N>`. */
export function execTaskId(runId: string, taskId: string, round = 0): string {
  return round === 0 ? `${runId}-${taskId}` : `${runId}-${taskId}.r${round}`;
}

/** Whether `execId` is one of the executions a signed task allows (round < maxRounds). */
export function execIdAllowed(execId: string, runId: string, taskId: string, maxRounds: number): boolean {
  const base = execTaskId(runId, taskId);
  if (execId === base) return maxRounds >= 1;
  const m = /^\.r([1-9][0-9]{0,3})$/.exec(execId.slice(base.length));
  return execId.startsWith(base) && m !== null && Number(m[1]) < maxRounds;
}
