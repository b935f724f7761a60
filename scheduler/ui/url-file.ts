/**
 * Where a running dashboard leaves its URL (with the token) for `gaxx ui` to print:
 * `<state>/ui/dashboard.json`, 0600, removed when it stops. The token is a credential, so the
 * file is readable by its owner only.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../certs/index.js';

const UrlFile = z.object({ url: z.string().url(), pid: z.number().int() }).strict();

/** The file's path under a state dir. */
export const dashboardUrlFile = (stateDir: string): string => join(stateDir, 'ui', 'dashboard.json');

/**
 * Records the URL of the dashboard this process serves: whole, not forced to disk (it describes
 * a running process, which a power loss ends together with any write it undoes).
 */
export function writeDashboardUrl(stateDir: string, url: string): void {
  writeFileAtomic(dashboardUrlFile(stateDir), JSON.stringify({ url, pid: process.pid }), 0o600, { durable: false });
}

/** The recorded URL, if any (a file that does not parse counts as none). */
export function readDashboardUrl(stateDir: string): { url: string; pid: number } | undefined {
  try {
    return UrlFile.parse(JSON.parse(readFileSync(dashboardUrlFile(stateDir), 'utf8')));
  } catch {
    return undefined;
  }
}

/** Removes the record if it is this process's. */
export function clearDashboardUrl(stateDir: string): void {
  if (readDashboardUrl(stateDir)?.pid === process.pid) rmSync(dashboardUrlFile(stateDir), { force: true });
}
