/** Directory trees deeper than PATH_MAX, as a task can make them (one `mkdir d; cd d` at a time). */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The command a task runs to make a chain of `depth` dirs named `d` in its work dir, fast (pieces of 500, moved under one another). */
export function deepTreeScript(depth: number): string {
  const pieces = Math.ceil(depth / 500);
  return [
    `p=$(printf 'd/%.0s' $(seq 500)); i=0`,
    `while [ $i -lt ${pieces} ]; do mkdir -p "t$i/$p"; if [ $i -gt 0 ]; then mv "t$((i - 1))/d" "t$i/$p"; fi; i=$((i + 1)); done`,
    `mv "t$((i - 1))/d" d && rm -r t*`,
  ].join('; ');
}

/**
 * Makes a chain of `depth` directories named `d` at `root` (with a file at the top), built in
 * pieces of 1000 (each made by path, then moved under the deepest dir of the next piece), so no
 * path used is over PATH_MAX.
 */
export function deepTree(root: string, depth: number): void {
  const work = mkdtempSync(join(dirname(root), '.deep-'));
  const piece = Array(1000).fill('d').join('/');
  let below: string | undefined;
  for (let made = 0, i = 0; made < depth; made += 1000, i++) {
    const top = join(work, String(i));
    mkdirSync(join(top, piece), { recursive: true });
    if (below) renameSync(join(below, 'd'), join(top, piece, 'd'));
    below = top;
  }
  writeFileSync(join(below as string, 'd', 'f'), 'x');
  renameSync(join(below as string, 'd'), root);
  rmSync(work, { recursive: true });
}
