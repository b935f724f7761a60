/**
 * The one dir test agents let their tasks write and see besides their work dirs
 * (`--task-writable`): the sandbox's /tmp is the task's own, and an agent refuses a writable dir
 * that holds its own dirs, so marker files, gates and scripts tasks must reach live here.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The dir every test agent lets its tasks write (sticky and world-writable, as /tmp is). */
export function taskWritableRoot(): string {
  const root = join(tmpdir(), `gaxx-task-writable-${process.getuid?.() ?? 'u'}`);
  if (!existsSync(root)) {
    mkdirSync(root, { recursive: true });
    chmodSync(root, 0o1777);
  }
  return root;
}

/** A fresh dir under taskWritableRoot() for one test's markers, writable by the agents' tasks. */
export function markerDir(prefix: string): string {
  const dir = mkdtempSync(join(taskWritableRoot(), `${prefix}-`));
  chmodSync(dir, 0o777);
  return dir;
}

/**
 * An empty file `name` in a fresh markerDir(prefix), which the agents' tasks (user nobody) can
 * append to: a test counts its lines to tell how often a task started.
 */
export function markerFile(prefix: string, name: string): string {
  const f = join(markerDir(prefix), name);
  writeFileSync(f, '');
  chmodSync(f, 0o666);
  return f;
}
