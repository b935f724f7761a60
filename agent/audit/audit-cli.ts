/**
 * `gaxx-agent audit [--since 1h] [--json] [--file PATH]`: prints the audit log, rotated files
 * included (oldest first), either readably or as the stored JSON lines.
 */
import { existsSync, readFileSync } from 'node:fs';
import { GaxxError } from '../../proto/index.js';
import { rotatedPath } from './audit.js';
import type { AuditRecord } from './audit-events.js';

/** Where output goes; the agent's main passes process.stdout/stderr. */
export interface AuditCliIo {
  out(line: string): void;
  err(line: string): void;
  now?: () => number;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `1h`, `30m`, `45s`, `2d` or an ISO timestamp -> the cut-off in ms since the epoch. */
export function parseSince(value: string, nowMs: number): number {
  const rel = /^(\d+)([smhd])$/.exec(value);
  if (rel) return nowMs - Number(rel[1]) * (UNITS[rel[2] as string] as number);
  const abs = Date.parse(value);
  if (!Number.isNaN(abs)) return abs;
  throw new GaxxError('USAGE', `--since takes a duration like 30m, 1h, 2d or an ISO time, not '${value}'`);
}

/** Audit records of `path` and its rotations, oldest first, at or after `sinceMs`. */
export function readAudit(path: string, sinceMs = 0, maxRotations = 100): { records: AuditRecord[]; unreadable: number } {
  const files: string[] = [];
  for (let n = maxRotations; n >= 0; n--) if (existsSync(rotatedPath(path, n))) files.push(rotatedPath(path, n));
  const records: AuditRecord[] = [];
  let unreadable = 0;
  for (const f of files) {
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        const rec = JSON.parse(line) as AuditRecord;
        if (typeof rec.ts !== 'string' || typeof rec.event !== 'string') throw new Error('not an audit record');
        if (Date.parse(rec.ts) >= sinceMs) records.push(rec);
      } catch {
        unreadable += 1;
      }
    }
  }
  return { records, unreadable };
}

/** One readable line: time, event, then the other fields as key=value. */
export function formatRecord(rec: AuditRecord): string {
  const { ts, event, ...rest } = rec as AuditRecord & Record<string, unknown>;
  const fields = Object.entries(rest)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  return `${ts}  ${event.padEnd(18)} ${fields.join(' ')}`.trimEnd();
}

/** Runs the audit subcommand; returns the process exit code. */
export function runAuditCli(args: string[], defaultPath: string, io: AuditCliIo): number {
  const now = (io.now ?? Date.now)();
  let since = 0;
  let json = false;
  let path = defaultPath;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new GaxxError('USAGE', `${a} needs a value`);
      return v;
    };
    if (a === '--since') since = parseSince(value(), now);
    else if (a === '--json') json = true;
    else if (a === '--file') path = value();
    else throw new GaxxError('USAGE', `unknown audit option '${a}' (use --since DURATION, --json, --file PATH)`);
  }
  if (!existsSync(path)) throw new GaxxError('NOT_FOUND', `no audit log at ${path}`);
  const { records, unreadable } = readAudit(path, since);
  for (const r of records) io.out(json ? JSON.stringify(r) : formatRecord(r));
  if (unreadable > 0) io.err(`${unreadable} unreadable line(s) skipped`);
  return 0;
}
