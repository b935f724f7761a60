/**
 * proto's file lock: processes that read, change and write back one file at the same time lose
 * nothing under it (the built module, run by several node processes at once); a gone holder's
 * lock is taken over, a live one's waited for and then refused naming it; the awaiting form
 * serialises one process's callers and hears a stop.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FleetCa, loadCertDir } from '../../certs/index.js';
import { withFileLock, withFileLockSync } from '../../proto/index.js';
import { repoRoot } from '../helpers/agent.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-file-lock-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `code` (an ES module's text) in `n` node processes at once; resolves once all exited 0. */
async function inProcesses(n: number, code: string): Promise<void> {
  const exits = Array.from(
    { length: n },
    (_, i) =>
      new Promise<{ code: number | null; err: string }>((resolve) => {
        const p = spawn(process.execPath, ['--input-type=module', '-e', code, String(i)], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        p.stderr.on('data', (d: Buffer) => (err += d.toString()));
        p.on('close', (c) => resolve({ code: c, err }));
      }),
  );
  for (const e of await Promise.all(exits)) expect(e.code, e.err).toBe(0);
}

const built = (path: string): string => JSON.stringify(join(repoRoot(), 'dist', path));

/** A pid no process has any more: a child that has exited. */
const deadPid = (): number => spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid as number;

describe('withFileLockSync', () => {
  it('four processes adding 40 each to one counter file, read and written back under the lock, end at 160', async () => {
    const counter = join(dir, 'counter');
    writeFileSync(counter, '0');
    await inProcesses(
      4,
      `import { readFileSync, writeFileSync } from 'node:fs';
       import { withFileLockSync } from ${built('proto/file-lock.js')};
       for (let i = 0; i < 40; i++)
         withFileLockSync(${JSON.stringify(join(dir, 'counter.lock'))}, 'the counter', () => {
           const n = Number(readFileSync(${JSON.stringify(counter)}, 'utf8'));
           // A few turns of other work between the read and the write: what a real change does.
           for (let t = Date.now(); Date.now() - t < 1; );
           writeFileSync(${JSON.stringify(counter)}, String(n + 1));
         });`,
    );
    expect(readFileSync(counter, 'utf8')).toBe('160');
    expect(readdirSync(dir)).toEqual(['counter']);
  });

  it("gaxx's known_hosts keeps every host that four processes record at once", async () => {
    const file = join(dir, 'known_hosts');
    await inProcesses(
      4,
      `import { KnownHosts } from ${built('cli/ssh/known-hosts.js')};
       const me = Number(process.argv[1]);
       const hosts = new KnownHosts(${JSON.stringify(file)});
       for (let i = 0; i < 15; i++)
         hosts.add('10.0.' + me + '.' + i, 22, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI' + String(me * 100 + i).padStart(3, '0'), 'f' + me);`,
    );
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(60);
    expect(new Set(lines.map((l) => l.split(' ')[0])).size).toBe(60);
  });

  it('a cert dir that four processes write at once holds one of their key and certificate pairs, never a key beside another certificate', async () => {
    const { ca } = await FleetCa.init(join(dir, 'ca'));
    const pairs = await Promise.all([0, 1, 2, 3].map((i) => ca.issue({ identity: { role: 'monitor', name: `m${i}` } })));
    const files = pairs.map((m) => ({ certPem: m.certPem, keyPem: m.keyPem, caPem: ca.certPem }));
    writeFileSync(join(dir, 'pairs.json'), JSON.stringify(files));
    const out = join(dir, 'out');
    // Each round, the four write at one moment (each waits for it): the last files written are
    // the four's last writes, in whatever order the machine ran them.
    for (let round = 0; round < 4; round++) {
      await inProcesses(
        4,
        `import { readFileSync } from 'node:fs';
         import { writeCertDir } from ${built('certs/index.js')};
         const mine = JSON.parse(readFileSync(${JSON.stringify(join(dir, 'pairs.json'))}, 'utf8'))[Number(process.argv[1])];
         while (Date.now() < ${Date.now() + 400});
         writeCertDir(${JSON.stringify(out)}, mine);`,
      );
      // loadCertDir refuses a key that does not match the certificate.
      expect(pairs.map((m) => m.serial)).toContain(loadCertDir(out).summary.serial);
    }
    expect(readdirSync(out).sort()).toEqual(['ca.pem', 'cert.pem', 'key.pem']);
  });

  it('takes over the lock of a process that is gone, and removes only its own claim', () => {
    const lock = join(dir, 'x.lock');
    writeFileSync(lock, JSON.stringify({ pid: deadPid() }));
    expect(withFileLockSync(lock, 'x', () => JSON.parse(readFileSync(lock, 'utf8')).pid)).toBe(process.pid);
    expect(existsSync(lock)).toBe(false);
  });

  it('waits for a live holder, then refuses (UNAVAILABLE) naming its pid, and leaves its claim', () => {
    const lock = join(dir, 'x.lock');
    // A live holder other than this process: the parent of the test worker.
    const held = JSON.stringify({ pid: process.ppid });
    writeFileSync(lock, held);
    let ran = false;
    const t0 = Date.now();
    expect(() => withFileLockSync(lock, 'the x file', () => (ran = true), { waitMs: 300 })).toThrow(
      expect.objectContaining({
        code: 'UNAVAILABLE',
        message: expect.stringContaining(`the x file: another gaxx (pid ${process.ppid}) has held the lock ${lock}`),
      }),
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(ran).toBe(false);
    expect(readFileSync(lock, 'utf8')).toBe(held);
  });

  it('releases the lock when the change throws', () => {
    const lock = join(dir, 'x.lock');
    expect(() =>
      withFileLockSync(lock, 'x', () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(existsSync(lock)).toBe(false);
  });
});

describe('withFileLock', () => {
  it("serialises one process's callers: no two changes overlap across their awaits", async () => {
    const lock = join(dir, 'x.lock');
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      [0, 1, 2, 3].map((i) =>
        withFileLock(lock, 'x', async () => {
          most = Math.max(most, ++inside);
          await new Promise<void>((r) => setImmediate(r));
          order.push(i);
          inside--;
        }),
      ),
    );
    expect(most).toBe(1);
    expect(order).toEqual([0, 1, 2, 3]);
    expect(existsSync(lock)).toBe(false);
  });

  it('a stop ends the wait for a live holder with CANCELLED, and the next caller still gets the lock once it is free', async () => {
    const lock = join(dir, 'x.lock');
    writeFileSync(lock, JSON.stringify({ pid: process.ppid }));
    const stop = new AbortController();
    const waiting = withFileLock(lock, 'x', async () => 'ran', { stop: stop.signal, waitMs: 60_000 });
    setImmediate(() => stop.abort());
    await expect(waiting).rejects.toMatchObject({ code: 'CANCELLED', message: expect.stringContaining(lock) });
    rmSync(lock);
    await expect(withFileLock(lock, 'x', async () => 'ran')).resolves.toBe('ran');
  });
});
