// Shell completion as a user installs it: the built CLI's script sourced in a real bash, with the
// real `gaxx completion fleets` behind it. A completion script needs no configuration, so a broken
// config.json (every new shell sources the script) breaks neither the script nor the shell.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { CLI_MAIN, entryNodeFlags, gaxxEnv, runGaxx } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'gaxx-completion-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A GAXX_HOME whose state names `fleet`, and whose config.json is `config` when given. */
function home(name: string, fleet: string, config?: string): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'state', 'fleets'), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'state', 'fleets', `${fleet}.json`), '{}');
  if (config !== undefined) {
    mkdirSync(join(dir, 'config'), { mode: 0o700 });
    writeFileSync(join(dir, 'config', 'config.json'), config);
  }
  return dir;
}

const good = home('good', 'alpha');
const other = home('other', 'beta');
const broken = home('broken', 'gamma', '{bad');

/** `source <(gaxx completion bash)` in a real bash, then what `_gaxx` offers for `words` (the last one being completed). */
function completeWith(env: Record<string, string>, words: string[], cwd?: string): { offered: string[]; stderr: string } {
  const gaxx = [process.execPath, ...entryNodeFlags(CLI_MAIN), CLI_MAIN].map((w) => `'${w}'`).join(' ');
  const body = [
    `gaxx() { ${gaxx} "$@"; }`,
    'source <(gaxx completion bash)',
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}`,
    `_gaxx; printf '%s\\n' "\${COMPREPLY[@]}"`,
  ].join('\n');
  const r = spawnSync('bash', ['--norc', '-c', body], { encoding: 'utf8', env: gaxxEnv({ env }), ...(cwd ? { cwd } : {}) });
  expect(r.status, r.stderr).toBe(0);
  return { offered: r.stdout.split('\n').filter(Boolean).sort(), stderr: r.stderr };
}

describe('gaxx completion', () => {
  it('the fleet names offered are those of the installation --home on the line names, before or after the command', () => {
    expect(completeWith({ GAXX_HOME: good }, ['gaxx', 'status', '']).offered).toEqual(['alpha']);
    expect(completeWith({ GAXX_HOME: good }, ['gaxx', '--home', other, 'status', '']).offered).toEqual(['beta']);
    expect(completeWith({ GAXX_HOME: good }, ['gaxx', 'run', '--home', other, '--fleet', '']).offered).toEqual(['beta']);
    expect(completeWith({ GAXX_HOME: good }, ['gaxx', '--home', other, 'run', '--fl']).offered).toEqual(['--fleet']);
  });

  it('a local path with spaces is one candidate wherever paths are offered, typed escaped or quoted; next to a fleet F: it is offered quoted', () => {
    const cwd = join(root, 'paths');
    mkdirSync(join(cwd, 'sp ace home'), { recursive: true });
    mkdirSync(join(cwd, 'alpha dir'));
    writeFileSync(join(cwd, 'sp ace file'), '');
    const env = { GAXX_HOME: good };
    expect(completeWith(env, ['gaxx', '--home', 'sp'], cwd).offered).toEqual(['sp ace home']);
    expect(completeWith(env, ['gaxx', '--state-dir', 'sp\\ a'], cwd).offered).toEqual(['sp ace home']);
    expect(completeWith(env, ['gaxx', '--home', '"sp a'], cwd).offered).toEqual(['sp ace home']);
    expect(completeWith(env, ['gaxx', 'exec', '--agent', 'h', '--', 'cat', 'sp'], cwd).offered).toEqual(['sp ace file', 'sp ace home']);
    expect(completeWith(env, ['gaxx', 'cp', 'sp'], cwd).offered).toEqual(['sp ace file', 'sp ace home']);
    // A fleet's F: offered too: readline would not quote the paths, so they come quoted.
    expect(completeWith(env, ['gaxx', 'cp', 'al'], cwd).offered).toEqual(['alpha:', 'alpha\\ dir']);
  });

  it('a broken config.json breaks neither the script nor the shell that sources it: fleet names are quietly none', async () => {
    for (const shell of ['bash', 'zsh', 'fish']) {
      const r = await runGaxx(['completion', shell], { home: broken });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain('gaxx completion');
    }
    const fleets = await runGaxx(['completion', 'fleets'], { home: broken });
    expect(fleets).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const typed = completeWith({ GAXX_HOME: broken }, ['gaxx', 'status', '']);
    expect(typed).toEqual({ offered: [], stderr: '' });
    expect(completeWith({ GAXX_HOME: broken }, ['gaxx', 'r']).offered).toEqual(['run', 'runs']);
    // The same home's fleets, named from a good installation's shell: none either.
    expect(completeWith({ GAXX_HOME: good }, ['gaxx', '--home', broken, 'delete', '']).offered).toEqual([]);
  });

  it('a command that reads the configuration still refuses a broken one (CONFIG_INVALID), and an unknown shell is USAGE', async () => {
    const ls = await runGaxx(['ls'], { home: broken });
    expect(ls.code).toBe(exitCodeFor('CONFIG_INVALID'));
    expect(ls.stderr).toMatch(/\[CONFIG_INVALID\]\n$/);
    const unknown = await runGaxx(['completion', 'csh'], { home: broken });
    expect(unknown.code).toBe(exitCodeFor('USAGE'));
    for (const argv of [['--help'], ['--version'], ['ls', '--help']]) expect((await runGaxx(argv, { home: broken })).code).toBe(0);
  });
});
