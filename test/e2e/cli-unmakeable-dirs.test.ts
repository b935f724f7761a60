// A directory gaxx is told to make where none can be made (under /proc, where mkdir keeps failing
// with ENOENT) is refused at once, FILE_ACCESS (exit 3) naming it: Node 20's recursive mkdir
// retried for ever there, at full CPU, and heard neither SIGTERM nor Ctrl-C meanwhile.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initHome } from '../helpers/cli-world.js';
import { runGaxx, type CliRun, type RunGaxxOptions } from '../helpers/cli.js';

let home: string;
let scratch: string;

beforeAll(async () => {
  home = await initHome('gxmk-');
  scratch = mkdtempSync(join(tmpdir(), 'gxmk-files-'));
}, 60_000);

afterAll(() => {
  for (const d of [home, scratch]) if (d) rmSync(d, { recursive: true, force: true });
});

/** `gaxx ARGS`, killed (SIGKILL: a busy loop hears no SIGTERM) if it has not ended in 20 s (it ends at once). */
const gaxx = (args: string[], o: RunGaxxOptions = {}): Promise<CliRun> => runGaxx(args, { home, timeoutMs: 20_000, killSignal: 'SIGKILL', ...o });

describe('a directory that cannot be made', () => {
  it('gaxx run --results under /proc: FILE_ACCESS, before any task', async () => {
    const tasks = join(scratch, 't3.txt');
    writeFileSync(tasks, 'a\nb\nc\n');
    const r = await gaxx(['run', '--fleet', 'none', '--tasks', tasks, '--results', '/proc/gaxx-results/x', '--json', '--', 'echo']);
    expect(r.code, r.stderr).toBe(3);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'FILE_ACCESS', exitCode: 3 } });
  });

  it('gaxx cp REMOTE LOCALDIR under /proc: FILE_ACCESS, before any agent is asked', async () => {
    const r = await gaxx(['cp', '--agent', '127.0.0.1:9', ':job/x', '/proc/gaxx-downloads']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/\[FILE_ACCESS\]$/m);
  });

  it('GAXX_HOME under /proc: gaxx init fails with FILE_ACCESS', async () => {
    const r = await gaxx(['init', '--name', 'x', '--json'], { home: '/proc/gaxx-home' });
    expect(r.code, r.stderr).toBe(3);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'FILE_ACCESS', exitCode: 3 } });
  });
});
