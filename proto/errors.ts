/**
 * GaxxError and ErrorCode: the one error vocabulary of every module. Expected failures throw a
 * GaxxError; boundaries map its code to a gRPC status (agent), a task result (scheduler) or an
 * exit code (CLI). Tests assert codes, never message text.
 */
import { dirname } from 'node:path';
import { GrpcStatus } from './grpc-status.js';

/** Every expected failure, with the gRPC status and CLI exit code it maps to. */
export const ERROR_CODES = {
  INVALID_ARGUMENT: { grpc: GrpcStatus.INVALID_ARGUMENT, exit: 2 },
  USAGE: { grpc: GrpcStatus.INVALID_ARGUMENT, exit: 2 },
  CONFIG_INVALID: { grpc: GrpcStatus.FAILED_PRECONDITION, exit: 3 },
  /** A file or directory gaxx needs cannot be read or written (permissions, read-only, full). */
  FILE_ACCESS: { grpc: GrpcStatus.FAILED_PRECONDITION, exit: 3 },
  NOT_FOUND: { grpc: GrpcStatus.NOT_FOUND, exit: 4 },
  ALREADY_EXISTS: { grpc: GrpcStatus.ALREADY_EXISTS, exit: 5 },
  FAILED_PRECONDITION: { grpc: GrpcStatus.FAILED_PRECONDITION, exit: 6 },
  INSECURE_FILE_MODE: { grpc: GrpcStatus.FAILED_PRECONDITION, exit: 7 },
  ROOT_REFUSED: { grpc: GrpcStatus.FAILED_PRECONDITION, exit: 7 },
  PROFILING_IN_PRODUCTION: { grpc: GrpcStatus.FAILED_PRECONDITION, exit: 7 },
  WEAK_SECRET: { grpc: GrpcStatus.FAILED_PRECONDITION, exit: 7 },
  /** The host cannot isolate tasks and the agent was not started with --unsafe-no-isolation. */
  ISOLATION_UNAVAILABLE: { grpc: GrpcStatus.FAILED_PRECONDITION, exit: 7 },
  /** A task env name that changes how programs load (LD_*, NODE_OPTIONS, ...). */
  ENV_REFUSED: { grpc: GrpcStatus.INVALID_ARGUMENT, exit: 2 },
  CERT_INVALID: { grpc: GrpcStatus.UNAUTHENTICATED, exit: 8 },
  CERT_EXPIRED: { grpc: GrpcStatus.UNAUTHENTICATED, exit: 8 },
  CERT_REVOKED: { grpc: GrpcStatus.UNAUTHENTICATED, exit: 8 },
  /** A revocation list older than the newest the agent has seen. */
  REVOCATION_ROLLBACK: { grpc: GrpcStatus.FAILED_PRECONDITION, exit: 8 },
  IDENTITY_MISMATCH: { grpc: GrpcStatus.UNAUTHENTICATED, exit: 8 },
  UNAUTHENTICATED: { grpc: GrpcStatus.UNAUTHENTICATED, exit: 8 },
  PERMISSION_DENIED: { grpc: GrpcStatus.PERMISSION_DENIED, exit: 9 },
  // Signed work (proto/signed-task.ts): a queued task runs only as an operator signed it.
  UNSIGNED_TASK: { grpc: GrpcStatus.PERMISSION_DENIED, exit: 9 },
  SIGNATURE_INVALID: { grpc: GrpcStatus.PERMISSION_DENIED, exit: 9 },
  SIGNATURE_EXPIRED: { grpc: GrpcStatus.PERMISSION_DENIED, exit: 9 },
  SIGNER_UNTRUSTED: { grpc: GrpcStatus.PERMISSION_DENIED, exit: 9 },
  SIGNER_NOT_OPERATOR: { grpc: GrpcStatus.PERMISSION_DENIED, exit: 9 },
  TASK_ID_MISMATCH: { grpc: GrpcStatus.PERMISSION_DENIED, exit: 9 },
  TARGET_MISMATCH: { grpc: GrpcStatus.PERMISSION_DENIED, exit: 9 },
  /** Work signed before the agent's fleet was created (--fleet-since): an earlier fleet's, of the same name. */
  SIGNED_BEFORE_FLEET: { grpc: GrpcStatus.PERMISSION_DENIED, exit: 9 },
  TASK_SPEC_MISMATCH: { grpc: GrpcStatus.ALREADY_EXISTS, exit: 5 },
  /** An Exec meant for another agent's task journal (ExecRequest.journal_id): a new agent at that address, nothing started. */
  AGENT_REPLACED: { grpc: GrpcStatus.FAILED_PRECONDITION, exit: 6 },
  REDIS_INSECURE: { grpc: GrpcStatus.FAILED_PRECONDITION, exit: 7 },
  PATH_ESCAPE: { grpc: GrpcStatus.PERMISSION_DENIED, exit: 9 },
  CHECKSUM_MISMATCH: { grpc: GrpcStatus.DATA_LOSS, exit: 10 },
  RESOURCE_EXHAUSTED: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, exit: 11 },
  UNAVAILABLE: { grpc: GrpcStatus.UNAVAILABLE, exit: 12 },
  REDIS_UNAVAILABLE: { grpc: GrpcStatus.UNAVAILABLE, exit: 12 },
  /** A run's records vanished from Redis while it was waited for (flushed, or restarted without its data): its results cannot come back. */
  REDIS_DATA_LOST: { grpc: GrpcStatus.DATA_LOSS, exit: 12 },
  DEADLINE_EXCEEDED: { grpc: GrpcStatus.DEADLINE_EXCEEDED, exit: 13 },
  /** An SSH host presented a key other than the pinned / known one: nothing was sent to it. */
  HOST_KEY_MISMATCH: { grpc: GrpcStatus.UNAUTHENTICATED, exit: 14 },
  /** An SSH host not in known_hosts, and trust on first use was not asked for (--accept-new). */
  HOST_KEY_UNKNOWN: { grpc: GrpcStatus.UNAUTHENTICATED, exit: 14 },
  CANCELLED: { grpc: GrpcStatus.CANCELLED, exit: 130 },
  INTERNAL: { grpc: GrpcStatus.INTERNAL, exit: 70 },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An expected failure with a stable code; `message` is one human line, never a secret. */
export class GaxxError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable facts (e.g. a dot-path list for validation errors). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GaxxError';
    this.code = code;
    this.details = opts.details;
  }
}

export function isGaxxError(e: unknown, code?: ErrorCode): e is GaxxError {
  return e instanceof GaxxError && (code === undefined || e.code === code);
}

const FS_PROBLEMS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device (the disk is full)',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a part of the path is not a directory',
};

/** A file-system errno's own text (ENOSPC: the disk is full...); undefined for one not listed. */
export function fsProblem(errno: string | undefined): string | undefined {
  return errno === undefined ? undefined : FS_PROBLEMS[errno];
}

/**
 * The fix for a failure that is the file system's (full, over quota, read-only), whatever the
 * path's owner and mode: undefined for the others (a permission problem's fix is the caller's).
 * `path`: the file met, named in the fix with the command that shows its file system.
 */
export function fsFix(errno: string | undefined, path?: string): string | undefined {
  const dir = path ? dirname(path) : undefined;
  const fs = dir ? `the file system that holds ${dir} (df -h ${dir})` : 'the file system';
  if (errno === 'ENOSPC') return `free space on ${fs}`;
  if (errno === 'EDQUOT') return `free some of the user's files on ${fs}, or raise the user's quota there (quota -s)`;
  if (errno === 'EROFS') return `remount ${fs} read-write`;
  return undefined;
}

/**
 * `e` naming `path` when it names no file: a write to a descriptor (ENOSPC, EDQUOT) carries no
 * path, and "cannot write: no space left" does not say which file system is full.
 */
export function namingPath(e: unknown, path: string): unknown {
  const err = e as NodeJS.ErrnoException | null;
  if (err && typeof err.errno === 'number' && typeof err.code === 'string' && err.path === undefined) err.path = path;
  return e;
}

/** What to suggest for a file-system failure (fileAccessError): by its cause. */
export interface FsHints {
  /** The fix for a permission problem (EACCES, EPERM, ENOTDIR). */
  access?: string;
  /** How to use another place instead, offered after any cause's fix (e.g. "point --data-dir elsewhere"). */
  elsewhere?: string;
}

/**
 * A file-system failure of Node (EACCES on mkdir, EROFS, ENOSPC...) as FILE_ACCESS naming the
 * path and what to do about it; undefined for anything else. The fix follows the cause: a full
 * disk is not fixed by the owner and mode of a directory. `hint` (a string: the fix for a
 * permission problem) is what to suggest.
 */
export function fileAccessError(e: unknown, hint?: string | FsHints): GaxxError | undefined {
  const err = e as NodeJS.ErrnoException | null;
  const problem = err && typeof err.code === 'string' ? FS_PROBLEMS[err.code] : undefined;
  if (!problem || !err) return undefined;
  const hints: FsHints = typeof hint === 'string' ? { access: hint } : (hint ?? {});
  const path = err.path;
  const where = path ? `${err.syscall ?? 'access'} ${path}` : (err.syscall ?? 'file access');
  const access = hints.access ?? (path ? `check the owner and mode of ${path} and its parent directories (ls -ld)` : 'check file permissions');
  const own = fsFix(err.code, path);
  const fix = own ? (hints.elsewhere ? `${own}, or ${hints.elsewhere}` : own) : access;
  return new GaxxError('FILE_ACCESS', `cannot ${where}: ${problem}; ${fix}`, { cause: e, details: { path, errno: err.code } });
}

/** The gRPC status a code maps to at the agent boundary. */
export function grpcStatusFor(code: ErrorCode): number {
  return ERROR_CODES[code].grpc;
}

/** The process exit code a code maps to at the CLI boundary. */
export function exitCodeFor(code: ErrorCode): number {
  return ERROR_CODES[code].exit;
}

/** Metadata key that carries the GaxxError code across gRPC, so clients can rebuild it. */
export const ERROR_CODE_METADATA_KEY = 'gaxx-error-code';

/** Trailing metadata of a RESOURCE_EXHAUSTED refusal: milliseconds after which a retry may succeed. */
export const RETRY_AFTER_METADATA_KEY = 'gaxx-retry-after-ms';

/**
 * Trailing metadata of a RESOURCE_EXHAUSTED refusal: what is exhausted (a GaxxError's
 * `details.refusal`). `slots`: every slot runs a task, one frees when a task ends; the others say
 * the agent cannot take work now: `disk-reserve` (its disk under --disk-reserve), `disk` (its
 * audit log or journal cannot be written), `rate-limit`, `calls` (too many calls from one address).
 */
export const REFUSAL_METADATA_KEY = 'gaxx-refusal';

/** The refusal kind of an agent whose every slot runs a task (see REFUSAL_METADATA_KEY). */
export const SLOTS_FULL = 'slots';

/**
 * Trailing metadata of an Exec the agent ended without running its command (it could not set the
 * task up: its work dir, its sandbox, a fork): the task did not start there and holds no result
 * there, whatever went out or came back before, so it may run elsewhere. A GaxxError carries it
 * as `details.notStarted`, on either side.
 */
export const NOT_STARTED_METADATA_KEY = 'gaxx-not-started';

/** Whether `e` is a refusal that says its task never started (NOT_STARTED_METADATA_KEY). */
export function refusedUnstarted(e: unknown): boolean {
  return isGaxxError(e) && e.details?.notStarted === true;
}

/** Reverse map for statuses from peers that sent no gaxx code. */
const FROM_GRPC: Record<number, ErrorCode> = {
  [GrpcStatus.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [GrpcStatus.NOT_FOUND]: 'NOT_FOUND',
  [GrpcStatus.ALREADY_EXISTS]: 'ALREADY_EXISTS',
  [GrpcStatus.PERMISSION_DENIED]: 'PERMISSION_DENIED',
  [GrpcStatus.UNAUTHENTICATED]: 'UNAUTHENTICATED',
  [GrpcStatus.RESOURCE_EXHAUSTED]: 'RESOURCE_EXHAUSTED',
  [GrpcStatus.FAILED_PRECONDITION]: 'FAILED_PRECONDITION',
  [GrpcStatus.UNAVAILABLE]: 'UNAVAILABLE',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'DEADLINE_EXCEEDED',
  [GrpcStatus.CANCELLED]: 'CANCELLED',
  [GrpcStatus.DATA_LOSS]: 'CHECKSUM_MISMATCH',
};

/** Rebuilds a GaxxError from a gRPC status and the optional gaxx code the peer attached. */
export function errorFromGrpc(grpcCode: number, details: string, gaxxCode?: string): GaxxError {
  const code = gaxxCode && gaxxCode in ERROR_CODES ? (gaxxCode as ErrorCode) : (FROM_GRPC[grpcCode] ?? 'INTERNAL');
  return new GaxxError(code, details || `gRPC status ${grpcCode}`);
}

/** Exit.reason of a task that was running when its agent died: found in the agent's journal at restart, never run again. */
export const LOST_IN_RESTART = 'lost_in_restart';

/**
 * Exit.reason of a task that was running when the agent's task launcher died (killed, or out of
 * memory): the task went with it, its end unknown, as for LOST_IN_RESTART.
 */
export const LAUNCHER_LOST = 'launcher_lost';

/** Whether an Exit.reason says the task's end is unknown (it was lost with its agent or launcher). */
export function lostReason(reason: string | undefined): boolean {
  return reason === LOST_IN_RESTART || reason === LAUNCHER_LOST;
}
