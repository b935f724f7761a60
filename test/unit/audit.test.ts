import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatRecord, parseSince, readAudit, runAuditCli } from '../../agent/audit/audit-cli.js';
import { argvSha256, type AuditEvent } from '../../agent/audit/audit-events.js';
import { AuditLog } from '../../agent/audit/audit.js';
import { isGaxxError } from '../../proto/index.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-audit-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const execStarted = (i: number): AuditEvent => ({
  event: 'exec_started',
  peer: '127.0.0.1',
  identity: 'operator alice',
  taskId: `t${i}`,
  argv0: '/bin/echo',
  argvSha256: argvSha256(['/bin/echo', 'hi']),
  pid: 100 + i,
});

describe('audit log', () => {
  it('writes JSON lines to a 0600 file, even when the file existed with a looser mode', () => {
    const p = join(dir, 'a', 'audit.log');
    AuditLog.open(p).close();
    chmodSync(p, 0o644);
    const log = AuditLog.open(p);
    log.write(execStarted(1));
    log.close();
    expect(statSync(p).mode & 0o777).toBe(0o600);
    const rec = JSON.parse(readFileSync(p, 'utf8').trim()) as Record<string, unknown>;
    expect(rec).toMatchObject({ event: 'exec_started', taskId: 't1', pid: 101 });
    expect(typeof rec.ts).toBe('string');
  });

  it('drops fields that are not in the event schema (env, stdin, contents, tokens)', () => {
    const p = join(dir, 'b.log');
    const log = AuditLog.open(p);
    const sneaky = { ...execStarted(2), env: { API_KEY: 'sekrit-env-value' }, stdin: 'sekrit-stdin', token: 'sekrit-token' };
    log.write(sneaky as AuditEvent);
    log.write({
      event: 'file_put',
      peer: '127.0.0.1',
      identity: 'operator alice',
      area: 'FILE_AREA_DATA',
      path: 'x',
      sha256: 'a'.repeat(64),
      size: 3,
      contents: 'sekrit-file',
    } as AuditEvent);
    log.close();
    const text = readFileSync(p, 'utf8');
    expect(text).not.toMatch(/sekrit/);
    expect(text.trim().split('\n')).toHaveLength(2);
  });

  it('refuses a malformed event rather than logging it', () => {
    const log = AuditLog.open(join(dir, 'c.log'));
    expect(() => log.write({ event: 'exec_started', peer: 'x' } as AuditEvent)).toThrow();
    log.close();
  });

  it('rotates by size and keeps N old files', () => {
    const p = join(dir, 'rot', 'audit.log');
    const log = AuditLog.open(p, { maxBytes: 4096, keep: 2 });
    for (let i = 0; i < 200; i++) log.write(execStarted(i));
    log.close();
    expect(existsSync(`${p}.1`)).toBe(true);
    expect(existsSync(`${p}.2`)).toBe(true);
    expect(existsSync(`${p}.3`)).toBe(false);
    for (const f of [p, `${p}.1`, `${p}.2`]) {
      expect(statSync(f).size).toBeLessThanOrEqual(4096);
      expect(statSync(f).mode & 0o777).toBe(0o600);
    }
    // The newest records survive, in order, across the rotated files.
    const { records } = readAudit(p);
    const ids = records.map((r) => (r as { taskId: string }).taskId);
    expect(ids[ids.length - 1]).toBe('t199');
    expect(ids).toEqual([...ids].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))));
  });

  it('does not follow a symlink planted at the log path', () => {
    const target = join(dir, 'victim');
    writeFileSync(target, 'untouched');
    const p = join(dir, 'link.log');
    symlinkSync(target, p);
    expect(() => AuditLog.open(p)).toThrow();
    expect(readFileSync(target, 'utf8')).toBe('untouched');
  });

  it('folds repeated refusals from one peer into one line with a count', () => {
    let t = 0;
    const p = join(dir, 'fold.log');
    const log = AuditLog.open(p, { refusalWindowMs: 1000 }, () => t);
    for (let i = 0; i < 50; i++) log.write({ event: 'connection_refused', peer: '10.0.0.9', reason: 'blocked' });
    log.write({ event: 'connection_refused', peer: '10.0.0.8', reason: 'blocked' });
    t = 2000;
    log.write({ event: 'connection_refused', peer: '10.0.0.9', reason: 'blocked' });
    log.close();
    const lines = readFileSync(p, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { peer: string; suppressed?: number });
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ peer: '10.0.0.9', suppressed: 49 });
  });
});

describe('audit CLI', () => {
  it('prints records since a cut-off, readably or as JSON, rotated files included', () => {
    const p = join(dir, 'cli', 'audit.log');
    let t = Date.parse('2026-01-01T10:00:00Z');
    const log = AuditLog.open(p, { maxBytes: 4096, keep: 3 }, () => t);
    log.write({ event: 'peer_blocked', peer: '10.0.0.9', untilMs: t + 1000, failures: 10, reason: 'handshake_failures' });
    t += 2 * 3_600_000;
    for (let i = 0; i < 40; i++) log.write(execStarted(i));
    log.close();
    const out: string[] = [];
    const io = { out: (l: string) => out.push(l), err: () => undefined, now: () => t };
    expect(runAuditCli(['--since', '1h'], p, io)).toBe(0);
    expect(out).toHaveLength(40);
    expect(out[0]).toMatch(/exec_started .*taskId=t0/);
    out.length = 0;
    runAuditCli(['--since', '3h', '--json'], p, io);
    expect(out).toHaveLength(41);
    expect((JSON.parse(out[0] as string) as { event: string }).event).toBe('peer_blocked');
    expect(formatRecord({ ts: 'T', event: 'peer_unblocked', peer: '1.2.3.4' })).toBe('T  peer_unblocked     peer=1.2.3.4');
  });

  it('refuses bad options with USAGE', () => {
    const codeOf = (fn: () => unknown) => {
      try {
        fn();
        return 'none';
      } catch (e) {
        return isGaxxError(e) ? e.code : 'other';
      }
    };
    expect(codeOf(() => parseSince('yesterday', 0))).toBe('USAGE');
    expect(codeOf(() => runAuditCli(['--bogus'], join(dir, 'b.log'), { out: () => undefined, err: () => undefined }))).toBe('USAGE');
    expect(codeOf(() => runAuditCli([], join(dir, 'missing.log'), { out: () => undefined, err: () => undefined }))).toBe('NOT_FOUND');
    expect(parseSince('30m', 3_600_000)).toBe(1_800_000);
  });

  it('hashes argv with framing', () => {
    expect(argvSha256(['a b'])).not.toBe(argvSha256(['a', 'b']));
    expect(argvSha256(['x'])).toMatch(/^[0-9a-f]{64}$/);
  });
});
