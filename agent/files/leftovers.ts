/**
 * What an agent killed mid-write leaves in its own dirs, removed when it starts again: the part of
 * an upload (files.ts: up to MAX_FILE_BYTES, in `tasks/`), cert-area stage dirs (cert-area.ts: a
 * copy of the cert dir, key included) and the temp files of atomic writes (the task journal, the
 * revocation floor, pushed cert files). Nothing else is touched: each is named so that no file of
 * a caller or a task can be taken for one.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isAtomicTemp } from '../../certs/index.js';
import { tasksRoot } from '../exec/task-dirs.js';
import { STAGE_PREFIX } from './cert-area.js';
import { UPLOAD_PREFIX } from './files.js';

export interface AgentDirs {
  dataDir: string;
  stateDir: string;
  certsDir: string;
}

/** Removes the leftovers above; the paths removed (a dir that cannot be read is skipped). */
export function sweepLeftovers(dirs: AgentDirs): string[] {
  const removed: string[] = [];
  const sweep = (dir: string, isLeftover: (name: string) => boolean): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return; // not made yet (a first start), or not readable: the agent's own checks say so
    }
    for (const name of names.filter(isLeftover)) {
      try {
        rmSync(join(dir, name), { recursive: true, force: true });
        removed.push(join(dir, name));
      } catch {
        // Left for the next start; it is in no one's way meanwhile.
      }
    }
  };
  sweep(tasksRoot(dirs.dataDir), (n) => n.startsWith(UPLOAD_PREFIX));
  sweep(dirs.stateDir, (n) => n.startsWith(STAGE_PREFIX) || isAtomicTemp(n));
  sweep(dirs.certsDir, isAtomicTemp);
  return removed;
}
