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
 * Why `argv0` cannot be run, as the kernel would find it (searched in `path`, as resolveCommand
 * does, when it has no slash): ENOENT when there is no such file, EACCES when there is one but it
 * is not an executable regular file (a directory, a file without x, a path through a file);
 * undefined when it can. A shell says 127 for the first and 126 for the second (spawn-one.ts
 * does too).
 */
export function commandProblem(argv0: string, path: string, cwd: string): 'ENOENT' | 'EACCES' | undefined {
  if (!argv0.includes('/')) {
    const found = resolveCommand(argv0, path, cwd);
    return typeof found === 'string' ? undefined : found.code === 'EACCES' ? 'EACCES' : 'ENOENT';
  }
  const p = isAbsolute(argv0) ? argv0 : resolvePath(cwd, argv0);
  try {
    if (!statSync(p).isFile()) return 'EACCES';
    accessSync(p, fsc.X_OK);
    return undefined;
  } catch (e) {
    // A part of the path that is not a directory (ENOTDIR), a loop: it is there and cannot run.
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'ENOENT' : 'EACCES';
  }
}

/**
 * Whether `argv0` names an executable file (commandProblem finds none). Wrapped in prlimit or a
 * sandbox, a command that cannot run would surface as the wrapper's exit instead of a spawn error;
 * checking first keeps "command not found" a spawn error.
 */
export function commandExists(argv0: string, path: string, cwd: string): boolean {
  return commandProblem(argv0, path, cwd) === undefined;
}
