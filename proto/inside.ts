/** Whether a path lies under a root, by name (the caller opens what it checked, or made it itself). */
import { isAbsolute, relative, sep } from 'node:path';

/** Whether `p` is `root` or lies under it (a name that merely starts with `..`, like `..cfg`, does). */
export function inside(root: string, p: string): boolean {
  const r = relative(root, p);
  return r === '' || (r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r));
}
