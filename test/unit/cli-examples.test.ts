// Every example of every command's --help is a command line the command accepts: its words
// resolve to that command, its flags parse (strictly, as a run parses them), and every value of
// a duration flag (shown as D in help) is a duration. An example that the command refuses is a
// promise the tool breaks on a user's first try.
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../proto/index.js';
import { COMMANDS } from '../../cli/commands.js';
import { parseCommandLine } from '../../cli/command-line.js';

/**
 * The words of the `gaxx ...` part of a shell line: single and double quotes and backslashes as
 * sh reads them, up to the first pipe, redirection, `;` or `&&` (a process substitution's
 * parentheses end a word). Undefined when the line has no gaxx command.
 */
export function gaxxWords(line: string): string[] | undefined {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      for (; line[j] !== '"'; j++) s += line[j] === '\\' && '"\\$`'.includes(line[j + 1] ?? '') ? (line[++j] as string) : line[j];
      word = (word ?? '') + s;
      i = j;
    } else if (c === '\\') word = (word ?? '') + (line[++i] ?? '');
    else if (c === ' ' || c === '(' || c === ')') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if ('|;&<>'.includes(c) && word === undefined) {
      if (words.includes('gaxx')) break;
      words.length = 0;
    } else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  const at = words.indexOf('gaxx');
  return at === -1 ? undefined : words.slice(at + 1);
}

describe('command examples', () => {
  it('the shell-word reader reads quotes, escapes and pipes as sh does', () => {
    expect(gaxxWords(`gaxx exec --agent h1 -- sh -c 'echo hi; exit 3'`)).toEqual(['exec', '--agent', 'h1', '--', 'sh', '-c', 'echo hi; exit 3']);
    expect(gaxxWords(`printf 'a\\nb\\n' | gaxx exec --agent 10.0.0.5 -- wc -l`)).toEqual(['exec', '--agent', '10.0.0.5', '--', 'wc', '-l']);
    expect(gaxxWords(`gaxx runs show R --json | jq '.results[]'`)).toEqual(['runs', 'show', 'R', '--json']);
    expect(gaxxWords(`gaxx run --fleet f -- sh -c "echo \\"x\\""`)).toEqual(['run', '--fleet', 'f', '--', 'sh', '-c', 'echo "x"']);
    expect(gaxxWords('source <(gaxx completion bash)')).toEqual(['completion', 'bash']);
    expect(gaxxWords('echo no command here')).toBeUndefined();
  });

  it('every example parses as its command, with valid durations', async () => {
    let checked = 0;
    for (const entry of COMMANDS) {
      const { command } = await entry.load();
      expect(command.examples.length, entry.name).toBeGreaterThan(0);
      for (const example of command.examples) {
        const words = gaxxWords(example);
        expect(words, `${entry.name}: ${example}`).toBeDefined();
        const all = words as string[];
        const names = entry.name.split(' ');
        expect(all.slice(0, names.length), example).toEqual(names);
        const dash = all.indexOf('--');
        const args = all.slice(names.length, dash === -1 ? undefined : dash);
        if (dash !== -1) expect(command.takesRest, example).toBe(true);
        let parsed: ReturnType<typeof parseCommandLine> | undefined;
        expect(() => (parsed = parseCommandLine(entry, command, args)), example).not.toThrow();
        for (const [flag, spec] of Object.entries(command.flags)) {
          if (spec.valueName !== 'D') continue;
          const v = parsed?.values[flag];
          for (const value of (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string')) {
            expect(parseDuration(value), `${example}: --${flag} ${value}`).toBeDefined();
          }
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
  });
});
