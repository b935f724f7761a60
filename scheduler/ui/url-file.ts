/**
 * Where a running dashboard leaves its URL (with the token) for `gaxx ui` to print:
 * `<state>/ui/dashboard.json`, 0600, removed when it stops. The token is a credential, so the
 * file is readable by its owner only.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../certs/index.js';
import { asProcessMark, processLives, processMark, processRunning } from '../../proto/index.js';

const UrlFile = z.object({ url: z.string().url(), pid: z.number().int(), start: z.string().optional(), boot: z.string().optional() }).strict();

/** The file's path under a state dir. */
export const dashboardUrlFile = (stateDir: string): string => join(stateDir, 'ui', 'dashboard.json');

/**
 * Records the URL of the dashboard this process serves, and which process that is (its pid and
 * start time): whole, not forced to disk (it describes a running process, which a power loss
 * ends together with any write it undoes).
 */
export function writeDashboardUrl(stateDir: string, url: string): void {
  writeFileAtomic(dashboardUrlFile(stateDir), JSON.stringify({ url, ...processMark() }), 0o600, { durable: false });
}

/**
 * The recorded URL, if the process that wrote it still runs (a file that does not parse counts
 * as none). A daemon killed without removing it leaves its port to anyone: whatever listens
 * there later must neither be sent the token nor be printed as the dashboard.
 */
export function readDashboardUrl(stateDir: string): { url: string; pid: number } | undefined {
  let recorded: z.infer<typeof UrlFile>;
  try {
    recorded = UrlFile.parse(JSON.parse(readFileSync(dashboardUrlFile(stateDir), 'utf8')));
  } catch {
    return undefined;
  }
  // The same pid, started at another time (or before a reboot), is a later process; a zombie none.
  const mark = asProcessMark(recorded);
  if (!mark || !processRunning(recorded.pid) || !processLives(mark)) return undefined;
  return { url: recorded.url, pid: recorded.pid };
}

/** Removes the record if it is this process's. */
export function clearDashboardUrl(stateDir: string): void {
  if (readDashboardUrl(stateDir)?.pid === process.pid) rmSync(dashboardUrlFile(stateDir), { force: true });
}
