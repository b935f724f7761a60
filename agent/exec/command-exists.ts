/** Whether a command can be found, as the kernel would find it (no agent modules: the launcher uses it). */
import { accessSync, constants as fsc, statSync } from 'node:fs';
import { isAbsolute, resolve as resolvePath } from 'node:path';

/**
 * The file execvp would run for `file` with this PATH in the work dir `cwd`: itself when it names
 * a path, else the first executable regular file in PATH (relative entries, empty ones included,
 * taken from `cwd`, as they are when the child execs); an errno code when there is none (EACCES
 * when one was found but not executable, as execvp reports it).
 */
export function resolveCommand(file: string, path: string | undefined, cwd: string): string | { code: string } {
  if (file.includes('/')) return file;
  if (file === '') return { code: 'ENOENT' };
  let denied = false;
  for (const dir of (path ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const p = resolvePath(cwd, dir, file);
    try {
      if (!statSync(p).isFile()) continue;
    } catch {
      continue;
    }
    try {
      accessSync(p, fsc.X_OK);
      return p;
    } catch {
      denied = true;
    }
  }
  return { code: denied ? 'EACCES' : 'ENOENT' };
}

/**
 * Whether `argv0` names an executable file (searched in `path`, as resolveCommand does, when it
 * has no slash), as the kernel would find it. Wrapped in prlimit, a missing command would surface
 * as prlimit's exit 127 instead of a spawn error; checking first keeps "command not found" a
 * spawn error.
 */
export function commandExists(argv0: string, path: string, cwd: string): boolean {
  if (!argv0.includes('/')) return typeof resolveCommand(argv0, path, cwd) === 'string';
  const p = isAbsolute(argv0) ? argv0 : resolvePath(cwd, argv0);
  try {
    accessSync(p, fsc.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
