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

/** The daemon's dashboard URL, or why it has none (`error`: its address taken...). */
const UrlFile = z
  .object({ url: z.string().url().optional(), error: z.string().optional(), pid: z.number().int(), start: z.string().optional(), boot: z.string().optional() })
  .strict()
  .refine((f) => (f.url === undefined) !== (f.error === undefined));

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
 * Records that the daemon this process is serves no dashboard, and why (its address was taken):
 * `gaxx ui` says so and serves it itself, where the daemon's log alone said it before.
 */
export function writeDashboardMissing(stateDir: string, why: string): void {
  writeFileAtomic(dashboardUrlFile(stateDir), JSON.stringify({ error: why, ...processMark() }), 0o600, { durable: false });
}

/** A running daemon's record: its dashboard's URL, or why it has none. */
export type DashboardRecord = { url: string; pid: number; error?: undefined } | { url?: undefined; pid: number; error: string };

/**
 * The record (writeDashboardUrl, writeDashboardMissing), if the process that wrote it still runs
 * (a file that does not parse counts as none). A daemon killed without removing it leaves its
 * port to anyone: whatever listens there later must neither be sent the token nor be printed as
 * the dashboard.
 */
export function readDashboardUrl(stateDir: string): DashboardRecord | undefined {
  let recorded: z.infer<typeof UrlFile>;
  try {
    recorded = UrlFile.parse(JSON.parse(readFileSync(dashboardUrlFile(stateDir), 'utf8')));
  } catch {
    return undefined;
  }
  // The same pid, started at another time (or before a reboot), is a later process; a zombie none.
  const mark = asProcessMark(recorded);
  if (!mark || !processRunning(recorded.pid) || !processLives(mark)) return undefined;
  return recorded.url !== undefined ? { url: recorded.url, pid: recorded.pid } : { pid: recorded.pid, error: recorded.error ?? '' };
}

/** Removes the record if it is this process's. */
export function clearDashboardUrl(stateDir: string): void {
  if (readDashboardUrl(stateDir)?.pid === process.pid) rmSync(dashboardUrlFile(stateDir), { force: true });
}
