/** The fleet lock spawn and delete take: one holder at a time, a dead holder's lock taken over, released only by its holder. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockFleet } from '../../cli/fleet/fleet-lock.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-fleet-lock-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A pid no process has any more: a child that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid as number;
}

describe('lockFleet', () => {
  it('holds the pid and command; a second taker is refused naming them (FAILED_PRECONDITION) while the holder lives', () => {
    // A live holder other than this process: the parent of the test worker.
    writeFileSync(join(dir, 'web.lock'), JSON.stringify({ pid: process.ppid, command: 'spawn' }));
    expect(() => lockFleet(dir, 'web', 'delete')).toThrow(
      expect.objectContaining({ code: 'FAILED_PRECONDITION', details: { pid: process.ppid, command: 'spawn' } }),
    );
    // Another fleet is not held.
    const other = lockFleet(dir, 'api', 'delete');
    expect(JSON.parse(readFileSync(join(dir, 'api.lock'), 'utf8'))).toMatchObject({
      pid: process.pid,
      command: 'delete',
      start: expect.any(String),
      boot: expect.any(String),
    });
    other.release();
    expect(existsSync(join(dir, 'api.lock'))).toBe(false);
  });

  it('refuses a second hold in the same process (a daemon renewing the fleet its reaper deletes) until the first is released', () => {
    const first = lockFleet(dir, 'web', 'delete');
    expect(() => lockFleet(dir, 'web', 'scheduler (certificate renewal)')).toThrow(
      expect.objectContaining({ code: 'FAILED_PRECONDITION', details: { pid: process.pid, command: 'delete' } }),
    );
    first.release();
    first.release();
    const second = lockFleet(dir, 'web', 'certs rotate');
    expect(JSON.parse(readFileSync(join(dir, 'web.lock'), 'utf8'))).toMatchObject({ pid: process.pid, command: 'certs rotate' });
    second.release();
    expect(existsSync(join(dir, 'web.lock'))).toBe(false);
  });

  it("takes over the lock of a process that is gone, and a release never removes another holder's lock", () => {
    writeFileSync(join(dir, 'web.lock'), JSON.stringify({ pid: deadPid(), command: 'spawn' }));
    const lock = lockFleet(dir, 'web', 'spawn');
    expect(JSON.parse(readFileSync(join(dir, 'web.lock'), 'utf8'))).toMatchObject({ pid: process.pid, command: 'spawn' });
    writeFileSync(join(dir, 'web.lock'), JSON.stringify({ pid: process.ppid, command: 'delete' }));
    lock.release();
    expect(existsSync(join(dir, 'web.lock'))).toBe(true);
  });

  it('takes over a lock whose pid now names another process (started later, or before a reboot): a live pid alone is no holder', () => {
    // The parent lives, but not since the start recorded here.
    writeFileSync(join(dir, 'web.lock'), JSON.stringify({ pid: process.ppid, command: 'spawn', start: '1' }));
    lockFleet(dir, 'web', 'delete').release();
    writeFileSync(join(dir, 'web.lock'), JSON.stringify({ pid: process.ppid, command: 'spawn', boot: 'an-earlier-boot' }));
    lockFleet(dir, 'web', 'delete').release();
    expect(existsSync(join(dir, 'web.lock'))).toBe(false);
  });
});
