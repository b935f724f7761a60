// Mistakes on the command line, as the built CLI answers them: a misspelled flag gets the flag
// meant and exit 2 (one error object on stdout under --json), a flag that takes one value given
// twice is refused rather than the last one kept. And every command's --help has a usage line
// that names each flag its flag list has, with the same value names.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/commands.js';
import { exitCodeFor } from '../../proto/index.js';
import { runGaxx } from '../helpers/cli.js';
import { listedFlags, usageProblems } from '../helpers/usage-lines.js';

const home = mkdtempSync(join(tmpdir(), 'gaxx-usage-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('command-line mistakes', () => {
  it('a misspelled flag is USAGE (exit 2) naming the flag meant; under --json, one error object on stdout', async () => {
    const r = await runGaxx(['run', '--flet', 'web', '--', 'true'], { home });
    expect(r.code).toBe(exitCodeFor('USAGE'));
    expect(r.stderr).toContain("did you mean '--fleet'?");
    expect(r.stdout).toBe('');
    const j = await runGaxx(['ls', '--json', '--jsno'], { home });
    expect(j.code).toBe(exitCodeFor('USAGE'));
    expect(JSON.parse(j.stdout)).toMatchObject({ error: { code: 'USAGE', exitCode: exitCodeFor('USAGE') } });
    expect((JSON.parse(j.stdout) as { error: { message: string } }).error.message).toContain("'--json'");
  });

  it('a flag that takes one value, given twice, is USAGE naming it, before anything is started', async () => {
    const r = await runGaxx(['run', '--fleet', 'web', '--fleet', 'other', '--', 'true'], { home });
    expect(r.code).toBe(exitCodeFor('USAGE'));
    expect(r.stderr).toMatch(/^gaxx: --fleet is given more than once/);
    // --env of one name twice, too (the last value would win unseen).
    const env = await runGaxx(['exec', '--agent', '127.0.0.1:1', '--env', 'K=1', '--env', 'K=2', '--', 'true'], { home });
    expect(env.code).toBe(exitCodeFor('USAGE'));
    expect(env.stderr).toMatch(/^gaxx: --env K is given more than once \('1' and '2'\)/);
    // A global flag too, before and after the command.
    const g = await runGaxx(['--home', home, 'status', '--home', join(home, 'other')], { home });
    expect(g.code).toBe(exitCodeFor('USAGE'));
    expect(g.stderr).toMatch(/^gaxx: --home is given more than once/);
    // Refused before anything was made in the home (no config, no state, no embedded redis-server).
    expect(readdirSync(home)).toEqual([]);
  });
});

describe('-- ends the options', () => {
  it('of every command: what follows it is positionals (a name with a leading dash), not flags', async () => {
    // Before: "'gaxx ls' takes no arguments after --", and cp's "missing SRC".
    const ls = await runGaxx(['ls', '--', 'nosuch'], { home });
    const plain = await runGaxx(['ls', 'nosuch'], { home });
    expect({ code: ls.code, stderr: ls.stderr }).toEqual({ code: plain.code, stderr: plain.stderr });
    expect(ls.code).toBe(exitCodeFor('NOT_FOUND'));
    // A word that looks like a flag is a positional after it: a fleet named '--json' (refused as a name).
    const json = await runGaxx(['status', '--', '--json'], { home });
    expect(json.code).toBe(exitCodeFor('INVALID_ARGUMENT'));
    expect(json.stderr).toContain("fleet '--json' must be");
    expect(json.stdout).toBe('');
    // cp's SRC may start with a dash: taken as a local file (no such fleet to send it to here).
    const cp = await runGaxx(['cp', '--', '-file.txt', 'nosuch:dir/'], { home });
    const dotted = await runGaxx(['cp', './-file.txt', 'nosuch:dir/'], { home });
    expect(cp.code).toBe(dotted.code);
    expect(cp.code).not.toBe(exitCodeFor('USAGE'));
    // Before it, a leading dash is still an option.
    expect((await runGaxx(['cp', '-file.txt', 'nosuch:dir/'], { home })).stderr).toContain("unknown option '-f'");
  });
});

describe('naming the fleet, asking for help and the version', () => {
  it('status, ls and delete take the fleet as --fleet F too (as run names it), once', async () => {
    const asFlag = await runGaxx(['ls', '--fleet', 'nosuch'], { home });
    const asWord = await runGaxx(['ls', 'nosuch'], { home });
    expect({ code: asFlag.code, stderr: asFlag.stderr }).toEqual({ code: asWord.code, stderr: asWord.stderr });
    expect(asFlag.code).toBe(exitCodeFor('NOT_FOUND'));
    const del = await runGaxx(['delete', '--fleet', 'nosuch', '--dry-run'], { home });
    expect(del.code, del.stderr).toBe(exitCodeFor('NOT_FOUND'));
    expect(del.stderr).toContain('nosuch');
    const twice = await runGaxx(['status', 'a', '--fleet', 'b'], { home });
    expect(twice.code).toBe(exitCodeFor('USAGE'));
    expect(twice.stderr).toContain('the fleet given twice');
    expect((await runGaxx(['status', '--help'], { home })).stdout).toMatch(/--fleet F\s+the fleet, as F/);
  });

  it("gaxx help CMD [SUB] prints that command's help; an unknown one is USAGE with the command meant", async () => {
    const run = await runGaxx(['help', 'run'], { home });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe((await runGaxx(['run', '--help'], { home })).stdout);
    expect((await runGaxx(['help', 'certs', 'issue'], { home })).stdout).toMatch(/^Usage: gaxx certs issue /);
    expect((await runGaxx(['help', 'certs'], { home })).stdout).toMatch(/^Usage: gaxx certs <subcommand>/);
    const typo = await runGaxx(['help', 'rnu'], { home });
    expect(typo.code).toBe(exitCodeFor('USAGE'));
    expect(typo.stderr).toContain("did you mean 'run'?");
    expect((await runGaxx(['help'], { home })).stdout).toMatch(/^gaxx \S+: run commands/);
  });

  it('--version and -V after a command print the version, as before it', async () => {
    const before = await runGaxx(['--version'], { home });
    for (const argv of [
      ['ls', '--version'],
      ['status', '-V'],
      ['run', '--fleet', 'x', '--version', '--', 'true'],
    ]) {
      const r = await runGaxx(argv, { home });
      expect({ argv, code: r.code, stdout: r.stdout }).toEqual({ argv, code: 0, stdout: before.stdout });
    }
  });
});

describe('--help of every command', () => {
  it('its usage line agrees with its flag list', async () => {
    const helps = await Promise.all(COMMANDS.map(async (c) => ({ name: c.name, r: await runGaxx([...c.name.split(' '), '--help'], { home }) })));
    const problems: Record<string, string[]> = {};
    for (const { name, r } of helps) {
      expect({ name, code: r.code }).toEqual({ name, code: 0 });
      const found = usageProblems(r.stdout);
      if (found.length > 0) problems[name] = found;
    }
    expect(problems).toEqual({});
    // The check read real flag lists (scheduler's has its settings' flags and three of its own).
    const scheduler = helps.find((h) => h.name === 'scheduler')?.r.stdout ?? '';
    expect(listedFlags(scheduler).map((f) => f.name)).toEqual(expect.arrayContaining(['lock', 'ca-dir', 'operator-certs', 'metrics-listen']));
  });
});
