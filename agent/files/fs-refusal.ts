/**
 * The one map from a file-system errno met by PutFile or GetFile to a coded refusal that names the
 * caller's path: an ordinary mistake (a name over 255 bytes, a file put onto a directory, a full
 * disk) is the caller's to fix, not an opaque INTERNAL. The errno's own path is not used: it is a
 * /proc/self/fd link or a temp file the caller never named.
 */
// proto/light: the task launcher maps the errors of its work-dir walk here too, and stays small.
import { GaxxError, type ErrorCode } from '../../proto/light.js';

const REFUSALS: Record<string, [ErrorCode, string]> = {
  ENAMETOOLONG: ['INVALID_ARGUMENT', 'a name in it is over 255 bytes, or the path is too long'],
  EISDIR: ['INVALID_ARGUMENT', 'it is a directory: name a file'],
  ENOTDIR: ['INVALID_ARGUMENT', 'a part of it is not a directory'],
  EEXIST: ['FAILED_PRECONDITION', 'something else already exists there'],
  ENOTEMPTY: ['FAILED_PRECONDITION', 'a directory is in the way'],
  EBUSY: ['FAILED_PRECONDITION', 'it is in use'],
  ETXTBSY: ['FAILED_PRECONDITION', 'it is a program being run'],
  ENOENT: ['NOT_FOUND', 'a part of it went away meanwhile'],
  ELOOP: ['PATH_ESCAPE', 'it leads through a symlink'],
  EACCES: ['FILE_ACCESS', "the agent's user may not write or read it"],
  EPERM: ['FILE_ACCESS', "the agent's user may not change it"],
  EROFS: ['FILE_ACCESS', 'the file system is read-only'],
  ENOSPC: ['RESOURCE_EXHAUSTED', 'no space left on the device'],
  EDQUOT: ['RESOURCE_EXHAUSTED', 'disk quota exceeded'],
  EFBIG: ['RESOURCE_EXHAUSTED', 'the file is over the largest size allowed there'],
  EMLINK: ['RESOURCE_EXHAUSTED', 'its directory holds as many subdirectories as it can'],
  EMFILE: ['RESOURCE_EXHAUSTED', 'the agent has too many files open; retry'],
  ENFILE: ['RESOURCE_EXHAUSTED', 'the system has too many files open; retry'],
};

/**
 * `e` as the refusal of a file call on `rel` (`what`: 'put', 'get', or 'use' for a task's work
 * dir); GaxxErrors and unknown failures (EIO: the agent's, not the caller's) pass through unchanged.
 */
export function fileRefusal(e: unknown, what: 'put' | 'get' | 'use', rel: string): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const refusal = typeof code === 'string' && !(e instanceof GaxxError) ? REFUSALS[code] : undefined;
  if (!refusal) return e;
  const [gaxxCode, why] = refusal;
  return new GaxxError(gaxxCode, `cannot ${what} '${rel}': ${why} (${code})`, { cause: e, details: { errno: code } });
}
