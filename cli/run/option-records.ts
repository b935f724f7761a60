/**
 * A record that becomes an option. Where a task-list record begins a word of the command (`{}`
 * as a whole word or at a word's start, or appended when the command has no `{}`), a record that
 * starts with `-` is read by the program as an option, not as the operand it was meant to be:
 * `ssh {} uptime` with the record `-oProxyCommand=CMD` runs CMD on the host that runs the task,
 * `curl {}` with `-o/path` writes where the record says, `nmap {}` with `-iL/etc/shadow`... Task
 * lists are often made from what others control (scan results, crawled URLs), so such a record
 * is refused (recordTask: outcome `refused`), unless the program whose word it is reads no
 * option there (programs.ts):
 * - a `--` of that program's own stands before it: `ssh -- {}`, `env -- ssh -- {}`; a wrapper's
 *   `--` (`env -- ssh {}`, `timeout -- 5 ssh {}`) ends the wrapper's options, not those of the
 *   program it runs, and a `--` that is an option's value (`grep -e -- {}`) ends none;
 * - the word is a positional parameter of a shell's `-c` script (`sh -c '...' _ {}`) or an
 *   argument after `python3 -c CODE`: that program reads no option there (what the script does
 *   with `"$1"` is the script's: `curl -- "$1"`). After `python3 -m MOD` the words are the
 *   module's, which parses them (`python3 -m pip download {}`): its own `--` is needed.
 * find reads a word that starts with `-` as a test or action even after `--`: no `--` helps there.
 * Likewise a record with `=` where make reads its operands is a variable assignment (`X!=CMD`
 * runs CMD), refused wherever make reads it.
 */
import { ownerOf, programOf, walk } from './programs.js';

/** Why a record may not begin a word: it would be an option, or (for make) an assignment. */
export interface Slots {
  /** The word positions at which a record starting with `-` would be read as an option. */
  options: number[];
  /** The word positions at which a record holding `=` would be a variable assignment of make's. */
  assignments: number[];
}

/**
 * The word positions of `argv` (argv.length: the record appended) at which a record would be read
 * as an option or an assignment: `starts` are the positions where a record begins a word.
 */
export function optionSlots(argv: readonly string[], starts: readonly number[]): Slots {
  const w = walk(argv);
  const owners = starts.map((i) => ({ i, owner: ownerOf(w, i) }));
  return {
    // The program the word belongs to reads options there unless its options ended before it.
    options: owners.filter(({ i, owner }) => owner?.data === undefined || i < owner.data).map(({ i }) => i),
    assignments: owners.filter(({ owner }) => owner !== undefined && /^g?make$/.test(programOf(owner.name).program)).map(({ i }) => i),
  };
}

/** Why `record` may not begin a word at `slots` (optionSlots), or undefined. */
export function optionRecordProblem(record: string, slots: Slots): string | undefined {
  if (slots.options.length > 0 && record.startsWith('-'))
    return "starts with '-', so the command would read it as an option, not as data (a record such as -oProxyCommand=CMD runs CMD); put -- before {} in the command where its own program takes it (ssh -- {} uptime, curl -- {}, env -- ssh -- {}: a wrapper's -- is the wrapper's), or pass the record to sh -c '... -- \"$1\"' _ {}";
  if (slots.assignments.length > 0 && record.includes('='))
    return "holds '=', so make would read it as a variable assignment, not as a target, even after -- (a record such as X!=CMD runs CMD)";
  return undefined;
}
