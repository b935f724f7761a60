// Every command's usage line names every flag of its flag list, with the same value names, and no
// flag the list lacks (the usage lines are written by hand; the flag lists are what is parsed).
// The program's help keeps its environment list in two aligned columns.
import { describe, expect, it } from 'vitest';
import type { Command } from '../../cli/command.js';
import { COMMANDS } from '../../cli/commands.js';
import { commandHelp, programHelp } from '../../cli/help.js';
import { SETTINGS } from '../../cli/settings.js';
import { usageProblems } from '../helpers/usage-lines.js';

const fake = (usage: string, flags: Command['flags']): Command => ({ usage, description: '', flags, examples: [], run: () => Promise.resolve(0) });

describe('usage lines', () => {
  it("every command's usage line agrees with its flag list", async () => {
    const problems: Record<string, string[]> = {};
    for (const entry of COMMANDS) {
      const found = usageProblems(commandHelp((await entry.load()).command));
      if (found.length > 0) problems[entry.name] = found;
    }
    expect(problems).toEqual({});
  });

  it('the check finds a flag left out, a value name that differs, a flag the list lacks', () => {
    const flags: Command['flags'] = {
      timeout: { type: 'string', valueName: 'D', help: 'x' },
      lock: { type: 'string', valueName: 'D', help: 'x' },
      json: { type: 'boolean', help: 'x' },
      null: { type: 'boolean', short: '0', help: 'x' },
    };
    expect(usageProblems(commandHelp(fake('gaxx x [--timeout D] [--lock D] [--json] [-0]', flags)))).toEqual([]);
    expect(usageProblems(commandHelp(fake('gaxx x [--timeout S] [--json] [-0] [--bogus]', flags)))).toEqual([
      "--timeout: the usage line says 'S]', the flag list 'D'",
      '--lock is not in the usage line',
      'the usage line names --bogus, which the flag list lacks',
    ]);
    // A second form on a line of its own counts too.
    expect(usageProblems(commandHelp(fake('gaxx x [--timeout D] [--json] [-0]\ngaxx x --lock D', flags)))).toEqual([]);
  });

  it("the program's environment list is two aligned columns, however long a variable's name", () => {
    const lines = programHelp(COMMANDS, '0.0.0')
      .split('\n')
      .filter((l) => SETTINGS.some((s) => l.startsWith(`  ${s.env} `)));
    expect(lines).toHaveLength(SETTINGS.length);
    const columns = new Set(lines.map((l) => /^ {2}\S+ +/.exec(l)?.[0].length));
    expect(columns.size).toBe(1);
  });
});
