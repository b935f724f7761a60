/**
 * Host processes by command line, for tests of what a task leaves behind. Tasks run in their own
 * PID namespace, so the pids they print are not host pids: tests give each process a unique
 * marker argument (e.g. `sleep 300.1234`) and look it up here.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Host pids of live (non-zombie) processes whose NUL-joined argv contains `marker`. */
export function pidsWith(marker: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ');
      if (!cmd.includes(marker)) continue;
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** True once no process carries `marker`, polling up to `ms` (a killed process takes a moment to go). */
export async function noneLeft(marker: string, ms = 5000): Promise<boolean> {
  for (let t = 0; t < ms && pidsWith(marker).length > 0; t += 25) await new Promise((r) => setTimeout(r, 25));
  return pidsWith(marker).length === 0;
}

/** A unique `sleep` duration to mark a process (seconds, long enough to outlive any test). */
export function sleepMarker(): string {
  return `${300 + Math.floor(Math.random() * 600)}.${process.pid}${Math.floor(Math.random() * 1e6)}`;
}
