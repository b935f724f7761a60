// The exit codes README lists for a command are the ones its --help lists: a script written from
// either one handles every code the other promises.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/commands.js';
import { repoRoot } from '../helpers/agent.js';

/** The codes of a help's `Exit codes: 0 ...; 1 ...; ...` sentence (each item starts with its code). */
function helpCodes(help: string): number[] {
  const flat = help.replace(/\n/g, ' ');
  const sentence = /Exit codes: (.*?\.)(?: |$)/.exec(flat)?.[1] ?? '';
  return [...sentence.matchAll(/(?:^|; )(\d+) /g)].map((m) => Number(m[1])).sort((a, b) => a - b);
}

/** The bold codes of README's paragraph that starts with `` `gaxx NAME` exit codes: ``. */
function readmeCodes(name: string): number[] {
  const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
  const at = readme.indexOf(`\`gaxx ${name}\` exit codes:`);
  const paragraph = readme.slice(at, readme.indexOf('\n\n', at));
  return [...paragraph.matchAll(/\*\*(\d+)\*\*/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
}

describe('exit codes in README and --help', () => {
  it('gaxx run: README lists the codes its --help lists, no more and no fewer', async () => {
    const entry = COMMANDS.find((c) => c.name === 'run');
    const { command } = await (entry as (typeof COMMANDS)[number]).load();
    const fromHelp = helpCodes(command.description);
    expect(fromHelp).toEqual(expect.arrayContaining([0, 1, 2, 12, 130]));
    expect(readmeCodes('run')).toEqual(fromHelp);
  });
});
