/** Whether a command can be found, as the kernel would find it (no agent modules: the launcher uses it). */
import { accessSync, constants as fsc, statSync } from 'node:fs';
import { isAbsolute, join, resolve as resolvePath } from 'node:path';

/**
 * Whether `argv0` names an executable file (searched in `path` when it has no slash), as the
 * kernel would find it. Wrapped in prlimit, a missing command would surface as prlimit's exit
 * 127 instead of a spawn error; checking first keeps "command not found" a spawn error.
 */
export function commandExists(argv0: string, path: string, cwd: string): boolean {
  const candidates = argv0.includes('/')
    ? [isAbsolute(argv0) ? argv0 : resolvePath(cwd, argv0)]
    : path
        .split(':')
        .filter(Boolean)
        .map((d) => join(d, argv0));
  return candidates.some((c) => {
    try {
      accessSync(c, fsc.X_OK);
      return statSync(c).isFile();
    } catch {
      return false;
    }
  });
}
