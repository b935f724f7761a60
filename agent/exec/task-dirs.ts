/** Where tasks' scratch work dirs are: `<data-dir>/tasks/<taskId>`. */
import { join } from 'node:path';
import { AGENT_TASKS_DIR } from '../../proto/index.js';

/**
 * The scratch work dir of a task that asked for none: `<data-dir>/tasks/<taskId>`. It lives as
 * long as the task's registry entry and is removed with it, so a long-lived agent does not keep
 * one directory per task forever. A task that must leave files behind names its own work dir.
 */
export function scratchDir(dataDir: string, taskId: string): string {
  return join(tasksRoot(dataDir), taskId);
}

/**
 * The data area's folder of the scratch dirs (also of the warm sandboxes' dirs, see
 * warm-pool.ts): the agent's own, never written by PutFile (files.ts).
 */
export const TASKS_DIR = AGENT_TASKS_DIR;

/** The dir of the scratch dirs (also of the warm sandboxes' dirs, see warm-pool.ts). */
export function tasksRoot(dataDir: string): string {
  return join(dataDir, TASKS_DIR);
}
