// The bundle's front (cli/front.ts, gaxx-front.cjs) answers a command line that asks only for
// gaxx's help or version without loading the CLI's commands (gaxx-cli.cjs), with exactly the
// answer the CLI itself gives (the tsc build has no front); every other command line, and a
// malformed one, goes to the full CLI. A reader that went away ends the front quietly (141). A
// copy of the bundle dir alone knows gaxx's version.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/agent.js';
import { CLI_MAIN, runGaxx } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'gaxx-front-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const TSC_MAIN = join(repoRoot(), 'dist', 'cli', 'main.js');

/** The command lines the front answers, and some it must hand on. */
const ANSWERED = [['--version'], ['-V'], ['--help'], ['-h'], ['help'], ['--home', tmp, '--version'], ['--redis-url=redis://127.0.0.1:1', '--help']];
const HANDED_ON = [['exec', '--help'], ['certs', '--help'], ['run', '--', 'echo', '--version'], ['--home'], ['--', '--help'], ['nosuch', '--help']];

describe('the CLI front', () => {
  it.each([...ANSWERED, ...HANDED_ON].map((argv) => [argv.join(' '), argv] as const))(
    'gaxx %s: the same output and exit code as the CLI without a front',
    async (_line, argv) => {
      const [bundle, tsc] = await Promise.all([runGaxx(argv, { home: tmp }), runGaxx(argv, { home: tmp, main: TSC_MAIN })]);
      expect(bundle.code).toBe(tsc.code);
      expect(bundle.stdout).toBe(tsc.stdout);
      expect(bundle.stderr).toBe(tsc.stderr);
      expect(bundle.stdout + bundle.stderr).toMatch(/\S/);
    },
  );

  it('answers without the commands; hands everything else to them', async () => {
    // A copy of the bundle whose CLI file fails as soon as it is loaded.
    const dir = join(tmp, 'bundle');
    cpSync(dirname(CLI_MAIN), dir, { recursive: true });
    writeFileSync(join(dir, 'gaxx-cli.cjs'), "throw new Error('the full CLI was loaded');\n");
    unlinkSync(join(dir, 'gaxx-cli.cjs.v8cache'));
    const main = join(dir, 'gaxx.cjs');
    for (const argv of ANSWERED) {
      const r = await runGaxx(argv, { home: tmp, main });
      expect({ argv, code: r.code, stderr: r.stderr }).toEqual({ argv, code: 0, stderr: '' });
    }
    for (const argv of HANDED_ON) {
      const r = await runGaxx(argv, { home: tmp, main });
      expect({ argv, loaded: r.stderr.includes('the full CLI was loaded') }).toEqual({ argv, loaded: true });
    }
  });

  it("a copy of the bundle dir alone (no checkout or installation around it) tells gaxx's version", async () => {
    const dir = join(tmp, 'copied');
    cpSync(dirname(CLI_MAIN), dir, { recursive: true });
    const { version } = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string };
    const r = await runGaxx(['--version'], { home: tmp, main: join(dir, 'gaxx.cjs') });
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: `${version}\n` });
    expect((await runGaxx(['--help'], { home: tmp, main: join(dir, 'gaxx.cjs') })).stdout.split('\n')[0]).toMatch(
      new RegExp(`^gaxx ${version.replace(/\./g, '\\.')}:`),
    );
  });

  it('ends with 141 and says nothing when its reader is gone', async () => {
    for (const flag of ['--help', '--version']) {
      const child = spawn(process.execPath, [CLI_MAIN, flag], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
      // Closed before the child can have written (it has not even started Node yet): its write fails with EPIPE.
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((done) => child.on('close', done));
      expect({ flag, code, stderr }).toEqual({ flag, code: 141, stderr: '' });
    }
  });
});
