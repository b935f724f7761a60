/**
 * The test run's own guard against a hung file: a worker blocked in a synchronous call (which no
 * vitest timeout can end) makes the run fail within the file limit, naming the file, instead of
 * waiting until CI kills it.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/agent.js';
import { eventually } from '../helpers/poll.js';
import { deadOrZombie } from '../helpers/procs.js';
import { fileLimitMs, HangWatch } from '../summary-reporter.js';

const dir = mkdtempSync(join(tmpdir(), 'gaxx-hang-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('HangWatch', () => {
  it('names the files running, and those past the limit, longest first, and forgets those that ended', () => {
    const w = new HangWatch(1000);
    w.start('a.test.ts', 0);
    w.start('b.test.ts', 500);
    w.start('c.test.ts', 900);
    expect(w.overdue(1000)).toEqual([]);
    w.end('c.test.ts');
    expect(w.overdue(1600)).toEqual([
      { file: 'a.test.ts', ms: 1600 },
      { file: 'b.test.ts', ms: 1100 },
    ]);
    expect(w.running(1600)).toEqual([
      { file: 'a.test.ts', ms: 1600 },
      { file: 'b.test.ts', ms: 1100 },
    ]);
    w.end('a.test.ts');
    expect(w.overdue(1600)).toEqual([{ file: 'b.test.ts', ms: 1100 }]);
    w.start('d.test.ts', 1500);
    expect(w.running(1600)).toEqual([
      { file: 'b.test.ts', ms: 1100 },
      { file: 'd.test.ts', ms: 100 },
    ]);
  });

  it('takes its limit from GAXX_TEST_FILE_LIMIT_S, and 600 s for a missing or bad value', () => {
    expect(fileLimitMs({ GAXX_TEST_FILE_LIMIT_S: '5' })).toBe(5000);
    for (const v of [undefined, '', '0', '-3', 'soon']) expect(fileLimitMs({ GAXX_TEST_FILE_LIMIT_S: v })).toBe(600_000);
  });
});

describe('test files that block their workers for good', () => {
  it('fails the run past the limit, names the file (blocked in a test or while loading), and ends its worker; other files still pass', async () => {
    const pidFile = join(dir, 'pid');
    const root = repoRoot();
    const vitest = spawn(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/fixtures/hang/vitest.config.ts'], {
      cwd: root,
      env: { ...process.env, GAXX_TEST_FILE_LIMIT_S: '8', GAXX_HANG_PID_FILE: pidFile, FORCE_COLOR: '0', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    vitest.stdout.on('data', (d: Buffer) => (out += d.toString()));
    vitest.stderr.on('data', (d: Buffer) => (out += d.toString()));
    // Should the guard fail, this ends the run rather than the test hanging in turn.
    const guard = setTimeout(() => vitest.kill('SIGKILL'), 90_000);
    const [code, signal] = (await once(vitest, 'exit')) as [number | null, string | null];
    clearTimeout(guard);
    expect({ code, signal }, out).toEqual({ code: 1, signal: null });
    expect(out).toMatch(/test files still running after the 8 s limit \(GAXX_TEST_FILE_LIMIT_S\)/);
    // Both are named; the one that blocked first is past the limit (which one that is varies).
    const named = [...out.matchAll(/^ {2}(\S+\.fixture\.ts): running for \d+ s(, past the limit)?$/gm)];
    expect(named.map((m) => m[1]).sort()).toEqual(['blocks-on-import.fixture.ts', 'blocks.fixture.ts']);
    expect(named[0]?.[2]).toBe(', past the limit');
    expect(out).not.toMatch(/passes\.fixture\.ts: running/);
    expect(out).toMatch(/✓ passes\.fixture\.ts/);
    expect(existsSync(pidFile)).toBe(true);
    const worker = Number(readFileSync(pidFile, 'utf8'));
    expect(await eventually(() => deadOrZombie(worker), 10_000)).toBe(true);
  });
});
