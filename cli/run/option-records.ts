/**
 * A record that becomes an option. Where a task-list record begins a word of the command (`{}`
 * as a whole word or at a word's start, or appended when the command has no `{}`), a record that
 * starts with `-` is read by the program as an option, not as the operand it was meant to be:
 * `ssh {} uptime` with the record `-oProxyCommand=CMD` runs CMD on the host that runs the task,
 * `curl {}` with `-o/path` writes where the record says, `nmap {}` with `-iL/etc/shadow`... Task
 * lists are often made from what others control (scan results, crawled URLs), so such a record
 * is refused (recordTask: outcome `refused`), unless the command keeps it an operand:
 * - a `--` stands before that word (options end there, for the programs that follow getopt);
 * - the word is a positional parameter of a shell's `-c` script (`sh -c '...' _ {}`) or the
 *   program's argument after `python3 -c CODE` / `-m MOD`: that program reads no option there
 *   (what the script does with `"$1"` is the script's: `curl -- "$1"`).
 */
import { getopt } from './getopt.js';
import { PYTHON } from './interpreter-code.js';
import { programOf, shellScriptAt } from './shell-code.js';

/** Where words after `at` start that the program at argv[at] takes as its arguments, no option (a shell's -c script's, python -c's). */
function argumentsFrom(argv: readonly string[], at: number): number | undefined {
  const { program, shell } = programOf(argv[at] ?? '');
  if (shell) return shellScriptAt(argv, at)?.args;
  if (program === 'python' || program === 'pypy') {
    const read = getopt(argv, at, PYTHON);
    return read.seen.has('-c') || read.seen.has('-m') ? read.operand : undefined;
  }
  return undefined;
}

/**
 * The word positions of `argv` (argv.length: the record appended) at which a record starting
 * with `-` would be read as an option: `starts` are the positions where a record begins a word.
 */
export function optionSlots(argv: readonly string[], starts: readonly number[]): number[] {
  const dashes = argv.indexOf('--');
  const args = argv.map((_, at) => argumentsFrom(argv, at)).filter((a) => a !== undefined);
  const operandsFrom = Math.min(dashes === -1 ? Infinity : dashes + 1, ...args);
  return starts.filter((i) => i < operandsFrom);
}

/** Why `record` may not begin a word at `slots` (optionSlots), or undefined. */
export function optionRecordProblem(record: string, slots: readonly number[]): string | undefined {
  if (slots.length === 0 || !record.startsWith('-')) return undefined;
  return "starts with '-', so the command would read it as an option, not as data (a record such as -oProxyCommand=CMD runs CMD); put -- before {} in the command where its program takes it (ssh -- {} uptime, curl -- {}), or pass the record to sh -c '... -- \"$1\"' _ {}";
}
