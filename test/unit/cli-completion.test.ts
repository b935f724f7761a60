// Shell completion scripts: generated from the command table; the bash one is run in a real bash.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { localFleetNames } from '../../cli/commands/completion.js';
import { COMMANDS } from '../../cli/commands.js';
import { bashScript, completionCommand, fishScript, zshScript } from '../../cli/completion-scripts.js';
import { CONFIG_FLAGS, LOG_LEVELS } from '../../cli/settings.js';
import { providerNames } from '../../cli/providers/index.js';

async function commands(): Promise<ReturnType<typeof completionCommand>[]> {
  return Promise.all(COMMANDS.map(async (e) => completionCommand(e.name, e.summary, (await e.load()).command, ['home', 'redis-url'])));
}

/** What `_gaxx` offers for the words typed so far (the last one being completed). */
function complete(script: string, words: string[]): string[] {
  const arr = words.map((w) => `'${w}'`).join(' ');
  // `gaxx completion fleets` stands in as a function: the script calls it for fleet names. Given
  // flags before `completion fleets`, it names them instead (at:--home:/x), to show what it was given.
  const fake = `gaxx() { if [[ "$1" == --* ]]; then printf 'at%s\\n' "$(printf ':%s' "\${@:1:$#-2}")"; else printf 'web\\ndb\\n'; fi; }`;
  const body = `${script}\n${fake}\nCOMP_WORDS=(${arr}); COMP_CWORD=${words.length - 1}; _gaxx; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['--norc', '-c', body], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: '/home/u' } });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean).sort();
}

describe('gaxx completion', () => {
  it('bash completes commands, subcommands, flags and fleet names', async () => {
    const script = bashScript(await commands());
    expect(complete(script, ['gaxx', 'ru'])).toEqual(['run', 'runs']);
    expect(complete(script, ['gaxx', 'runs', 'w'])).toEqual(['wait']);
    expect(complete(script, ['gaxx', 'runs', '--l'])).toEqual(['--limit']);
    expect(complete(script, ['gaxx', 'run', '--con'])).toEqual(['--concurrency']);
    expect(complete(script, ['gaxx', 'run', '--fleet', ''])).toEqual(['db', 'web']);
    expect(complete(script, ['gaxx', 'status', 'w'])).toEqual(['web']);
    expect(complete(script, ['gaxx', 'certs', 'rotate', '--fl'])).toEqual(['--fleet']);
  });

  it('bash finds the command after global flags typed before it, and passes --home and --state-dir on to the fleet names', async () => {
    const script = bashScript(await Promise.all(COMMANDS.map(async (e) => completionCommand(e.name, e.summary, (await e.load()).command, CONFIG_FLAGS))));
    expect(complete(script, ['gaxx', '--home', '/x', 'run', '--fl'])).toEqual(['--fleet']);
    expect(complete(script, ['gaxx', '--home', '/x', 'r'])).toEqual(['run', 'runs']);
    // --home=/x: one word, or three where COMP_WORDBREAKS holds '=' (bash's default).
    expect(complete(script, ['gaxx', '--home=/x', 'runs', 'w'])).toEqual(['wait']);
    expect(complete(script, ['gaxx', '--home', '=', '/x', '--log-level', 'warn', 'certs', 'issue', '--role', 'a'])).toEqual(['agent']);
    // A boolean global takes no value: the word after it is the command.
    expect(complete(script, ['gaxx', '--redis-insecure', 'st'])).toEqual(['status']);
    expect(complete(script, ['gaxx', '--h'])).toEqual(['--help', '--home']);
    expect(complete(script, ['gaxx', '--log-level', 'd'])).toEqual(['debug']);
    expect(complete(script, ['gaxx', '--home', '/x', 'run', '--fleet', ''])).toEqual(['at:--home:/x']);
    expect(complete(script, ['gaxx', '--home=/x', 'status', ''])).toEqual(['at:--home:/x']);
    expect(complete(script, ['gaxx', 'delete', '--state-dir', '~/s', ''])).toEqual(['at:--state-dir:/home/u/s']);
    expect(complete(script, ['gaxx', '--home', '/x', 'cp', 'a'])).toContain('at:--home:/x:');
    // A positional is counted among the words that are not flags or their values, wherever flags are.
    expect(complete(script, ['gaxx', 'delete', '--provider', 'local', 'w'])).toEqual(['web']);
    expect(complete(script, ['gaxx', 'status', 'web', 'd'])).not.toContain('db');
  });

  it('bash offers the values of a flag with a fixed set, fleet names for F: and F positionals, and files elsewhere', async () => {
    const cmds = await Promise.all(COMMANDS.map(async (e) => completionCommand(e.name, e.summary, (await e.load()).command, CONFIG_FLAGS)));
    const script = bashScript(cmds);
    expect(complete(script, ['gaxx', 'spawn', '--provider', ''])).toEqual([...providerNames()].sort());
    expect(complete(script, ['gaxx', 'spawn', '--count', '2', '--provider', 's'])).toEqual(['ssh']);
    expect(complete(script, ['gaxx', 'delete', 'web', '--provider', 'l'])).toEqual(['linode', 'local']);
    expect(complete(script, ['gaxx', 'certs', 'issue', '--role', ''])).toEqual(['agent', 'monitor', 'operator', 'scheduler']);
    expect(complete(script, ['gaxx', 'ls', '--log-level', ''])).toEqual([...LOG_LEVELS].sort());
    expect(complete(script, ['gaxx', 'completion', ''])).toEqual(['bash', 'fish', 'zsh']);
    expect(complete(script, ['gaxx', 'delete', ''])).toEqual(['db', 'web']);
    expect(complete(script, ['gaxx', 'ssh', 'w'])).toEqual(['web']);
    // cp: a fleet's F: beside local paths, for SRC and for DST.
    expect(complete(script, ['gaxx', 'cp', 'w'])).toContain('web:');
    expect(complete(script, ['gaxx', 'cp', './x', 'd'])).toContain('db:');
    expect(complete(script, ['gaxx', 'cp', '/e'])).toContain('/etc');
  });

  it('fish offers the same fixed values and the F: of cp', async () => {
    const cmds = await Promise.all(COMMANDS.map(async (e) => completionCommand(e.name, e.summary, (await e.load()).command, CONFIG_FLAGS)));
    const fish = fishScript(cmds);
    expect(fish).toContain(`-l provider -x -a '${[...providerNames()].join(' ')}'`);
    expect(fish).toContain(`-l log-level -x -a '${LOG_LEVELS.join(' ')}'`);
    expect(fish).toContain("-l role -x -a 'agent operator scheduler monitor'");
    expect(fish).toContain(`-n '__gaxx_is cp' -F -a '(__gaxx_fleets)":"'`);
    expect(fish).toContain(`-n '__gaxx_is completion' -a 'bash zsh fish'`);
    // The command is found after global flags, and the fleet names are asked of the installation the line names.
    expect(fish).toMatch(/function __gaxx_cmd\n[^]*contains -- \$toks\[1\] --home [^\n]*--state-dir/);
    expect(fish).toMatch(/function __gaxx_fleets\n[^]*contains -- \$toks\[\$i\] --home --state-dir[^]*gaxx \$loc completion fleets/);
    expect(fish).toContain("complete -c gaxx -n '__gaxx_is' -l log-level -x -a");
    if (spawnSync('fish', ['--version']).status === 0) expect(spawnSync('fish', ['--no-execute', '-c', fish]).status).toBe(0);
  });

  it('zsh and fish scripts name every command and the fleet helper', async () => {
    const cmds = await commands();
    const zsh = zshScript(cmds);
    expect(zsh).toContain('bashcompinit');
    expect(zsh).toContain('complete -F _gaxx gaxx');
    const fish = fishScript(cmds);
    for (const c of ['run', 'runs', 'cp', 'status', 'completion']) expect(fish).toContain(`-a '${c}'`);
    expect(fish).toContain("-l fleet -x -a '(__gaxx_fleets)'");
    if (spawnSync('zsh', ['--version']).status === 0) expect(spawnSync('zsh', ['-n', '-c', zsh]).status).toBe(0);
  });

  it('fleet names come from the local state dir, none when it does not exist', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gxcomp-'));
    try {
      expect(localFleetNames(join(dir, 'missing'))).toEqual([]);
      mkdirSync(join(dir, 'fleets'));
      writeFileSync(join(dir, 'fleets', 'web.json'), '{}');
      mkdirSync(join(dir, 'fleets', 'db'));
      writeFileSync(join(dir, 'fleets', '.hidden'), '');
      expect(localFleetNames(join(dir, 'fleets'))).toEqual(['db', 'web']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
