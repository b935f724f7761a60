// The CLI's one "did you mean" (cli/suggest.ts), and the USAGE lines that use it for commands,
// subcommands and flags (cli/dispatch.ts, cli/command-line.ts), run through runCli.
import { describe, expect, it } from 'vitest';
import { editDistance, suggest } from '../../cli/suggest.js';
import { cliInProcess } from '../helpers/run-cli.js';

const cli = (argv: string[]): Promise<{ code: number; err: string }> => cliInProcess(argv);

describe('edit distance', () => {
  it('counts insertions, deletions, substitutions and adjacent transpositions as one edit each', () => {
    expect(editDistance('run', 'run')).toBe(0);
    expect(editDistance('rnu', 'run')).toBe(1);
    expect(editDistance('staus', 'status')).toBe(1);
    expect(editDistance('flet', 'fleet')).toBe(1);
    expect(editDistance('sho', 'show')).toBe(1);
    expect(editDistance('lsit', 'list')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('abc', '')).toBe(3);
    // Symmetric.
    expect(editDistance('scheduler', 'schedluer')).toBe(editDistance('schedluer', 'scheduler'));
  });
});

describe('suggest', () => {
  const commands = ['init', 'certs', 'run', 'runs', 'scheduler', 'spawn', 'ls', 'delete', 'ssh', 'cp', 'status', 'completion', 'exec', 'ui'];

  it('finds the word meant: a typo, a missing or doubled letter, two letters swapped', () => {
    expect(suggest('rnu', commands)).toBe('run');
    expect(suggest('staus', commands)).toBe('status');
    expect(suggest('statsu', commands)).toBe('status');
    expect(suggest('schduler', commands)).toBe('scheduler');
    expect(suggest('exce', commands)).toBe('exec');
    expect(suggest('flet', ['fleet', 'agent', 'tasks'])).toBe('fleet');
    expect(suggest('lst', ['issue', 'list', 'rotate', 'revoke'])).toBe('list');
  });

  it('suggests nothing for a word that is not close (at most one edit per three letters)', () => {
    expect(suggest('scan', commands)).toBeUndefined();
    expect(suggest('frobnicate', commands)).toBeUndefined();
    expect(suggest('x', ['json'])).toBeUndefined();
    // The word itself is no suggestion.
    expect(suggest('run', ['run'])).toBeUndefined();
  });
});

describe('USAGE lines with a suggestion', () => {
  it('a misspelled flag, command or subcommand names the closest one; exit 2', async () => {
    const cases: Array<[string[], string]> = [
      [['run', '--flet', 'web', '--', 'true'], "did you mean '--fleet'?"],
      [['rnu'], "did you mean 'run'?"],
      [['staus'], "did you mean 'status'?"],
      [['runs', 'sho', 'X'], "did you mean 'gaxx runs show'?"],
      [['certs', 'lst'], "did you mean 'gaxx certs list'?"],
      [['--verison'], "did you mean '--version'?"],
      [['ls', '--jsno'], "did you mean '--json'?"],
      [['scheduler', '--concurrnecy', '4'], "did you mean '--concurrency'?"],
    ];
    for (const [argv, hint] of cases) {
      const r = await cli(argv);
      expect({ argv, code: r.code }).toEqual({ argv, code: 2 });
      expect(r.err, argv.join(' ')).toContain(hint);
      expect(r.err, argv.join(' ')).toMatch(/\[USAGE\]\n$/);
    }
  });

  it('an unknown subcommand without a close match lists the subcommands; a far word gets no guess', async () => {
    const certs = await cli(['certs', 'frob']);
    expect(certs.code).toBe(2);
    expect(certs.err).toContain('issue, list, rotate, revoke');
    const scan = await cli(['scan']);
    expect(scan.code).toBe(2);
    expect(scan.err).not.toContain('did you mean');
  });

  it("a command word before '--' says that the command goes after '--'", async () => {
    const r = await cli(['run', '--fleet', 'web', 'echo', 'hi']);
    expect(r.code).toBe(2);
    expect(r.err).toContain("goes after '--'");
  });

  it('a flag that takes one value, given twice, is USAGE naming it (also a global flag); an on/off flag may repeat', async () => {
    for (const [argv, flag] of [
      [['run', '--fleet', 'web', '--fleet', 'other', '--', 'true'], '--fleet'],
      [['run', '--fleet', 'web', '--tasks', 'a', '--tasks=b', '--', 'true'], '--tasks'],
      [['--home', '/nonexistent-a', 'ls', '--home', '/nonexistent-b'], '--home'],
    ] as const) {
      const r = await cli([...argv]);
      expect({ argv, code: r.code }).toEqual({ argv, code: 2 });
      expect(r.err).toContain(`${flag}`);
      expect(r.err).toContain('more than once');
    }
    // A repeatable flag may repeat, and so may an on/off flag (long and short forms too): it means the same as once.
    const agents = await cli(['run', '--agent', 'h1', '--agent', 'h2', '--retries', '99', '--', 'true']);
    expect(agents.err).not.toContain('more than once');
    for (const argv of [
      ['ls', '--json', '--json'],
      ['run', '--fleet', 'web', '--tasks', 'a', '-0', '--null', '--', 'true'],
      ['delete', 'web', '-y', '--yes', '--dry-run', '--dry-run'],
    ]) {
      const r = await cli(argv);
      expect(r.err, argv.join(' ')).not.toContain('more than once');
      expect(r.err, argv.join(' ')).not.toMatch(/^gaxx: --[\w-]+ (takes|needs)|unknown option/);
    }
  });

  it('a flag given a value it does not take, and a bad --log-level, are said plainly and in lower case', async () => {
    const json = await cli(['run', '--json=true']);
    expect(json.code).toBe(2);
    expect(json.err).toMatch(/^gaxx: --json takes no value/);
    const level = await cli(['ls', '--log-level=bogus']);
    expect(level.code).toBe(2);
    expect(level.err).toContain('fatal, error, warn, info, debug, trace, silent');
    expect(level.err).not.toMatch(/Invalid enum|Expected/);
  });
});
