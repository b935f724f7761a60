/**
 * A gate a remote task waits at: the task runs `gate.wait` (a shell loop) and goes on once the
 * test calls `open()`, after it has seen what the task had to outlast (a rotation, a drain, its
 * CLI killed). Instead of a `sleep N` that bets the test is done within N seconds. The gate lives
 * in a temp dir every user may enter (agents run tasks as nobody); the loop ends on its own after
 * `boundSeconds` (default 120) so a failed test leaves no task behind.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { taskWritableRoot } from './task-writable.js';

export interface TaskGate {
  /** The file whose existence opens the gate. */
  path: string;
  /** Shell commands that wait until the gate is open (or the bound passes). */
  wait: string;
  open(): void;
  /** Removes the gate's dir: only once no task waits at it any more (a removed gate is shut). */
  remove(): void;
}

/** A new, closed gate. */
export function taskGate(boundSeconds = 120): TaskGate {
  // Where tasks can see it: their /tmp is their own.
  const dir = mkdtempSync(join(taskWritableRoot(), 'gate-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'open');
  const rounds = boundSeconds * 20;
  return {
    path,
    wait: `i=0; while [ ! -e '${path}' ] && [ $i -lt ${rounds} ]; do sleep 0.05; i=$((i+1)); done`,
    open: () => writeFileSync(path, ''),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
