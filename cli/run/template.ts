/**
 * The command template of `gaxx run --tasks`: `{}` stands for the task's input record and `{#}`
 * for its 1-based sequence number. The argv is never handed to a shell by gaxx: each element
 * stays one argument, so a record with spaces, quotes or `;` is passed as data.
 *
 * `{}` inside a larger word is replaced there too (as GNU parallel does: `out/{}.txt`), still as
 * part of that one argument. Where a program would parse that argument as code (the script of
 * `sh -c`, `flock -c`, `su -c`, `sg`, `watch`, `env -S`, the code of `python3 -c`, `perl -e`, `node -e`,
 * an awk program, a sed script, ssh's remote command...: shell-code.ts), `{}` is refused wherever
 * that program stands in argv, since a wrapper (`nice`, `timeout 5`, `xargs`...) runs the words
 * after it: pass the record as an argument instead, `sh -c 'echo "$1"' _ {}`,
 * `python3 -c 'import sys; print(sys.argv[1])' {}`. `{#}` may stand there: it is a number gaxx
 * makes, not input.
 * A template with no `{}` gets the record appended as its last argument (like xargs/parallel).
 */
import { GaxxError } from '../../proto/index.js';
import { optionRecordProblem, optionSlots, type Slots } from './option-records.js';
import { shellCode } from './shell-code.js';

/** What stands for the record unless `gaxx run --replace STR` names another string. */
export const RECORD = '{}';
/** What stands for the record's number. */
const SEQ = '{#}';

/** Whether any element mentions the record's string (`{}`, or `--replace`'s) or `{#}`. */
function hasPlaceholder(argv: readonly string[], record: string): boolean {
  return argv.some((a) => a.includes(record) || a.includes(SEQ));
}

/** A compiled template: renders one task's argv from its record. */
export class CommandTemplate {
  private readonly append: boolean;
  /** Where a record starting with `-` would be read as an option, or one with `=` as make's assignment (option-records.ts). */
  private readonly optionSlots: Slots;

  private readonly placeholder: RegExp;

  private constructor(
    private readonly argv: readonly string[],
    private readonly record: string,
  ) {
    this.append = !hasPlaceholder(argv, record);
    const starts = this.append ? [argv.length] : argv.flatMap((a, i) => (a.startsWith(record) ? [i] : []));
    this.optionSlots = optionSlots(argv, starts);
    this.placeholder = new RegExp(`${record.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}|\\{#\\}`, 'g');
  }

  /**
   * Checks and compiles; USAGE when the record's string would land inside code (shell-code.ts).
   * `record`: the string that stands for the record (`{}`, or `--replace`'s, so that a command
   * can hold a literal `{}`: `find . -exec ls {} +`, a JSON object).
   */
  static compile(argv: readonly string[], record = RECORD): CommandTemplate {
    if (argv.length === 0) throw new GaxxError('USAGE', `give the command after --, e.g. gaxx run --tasks FILE -- echo ${record}`);
    if (argv[0] === '') throw new GaxxError('USAGE', "the command is empty ('' as the program): name the program to run first after --");
    const code = shellCode(argv, record).find((w) => w.includes(record));
    if (code !== undefined) {
      throw new GaxxError(
        'USAGE',
        `${record} inside '${code}' would run input as code (a program in the command runs that word as a script or command line); pass the record as an argument instead, as in sh -c '... "$1" ...' _ ${record} or python3 -c '... sys.argv[1] ...' ${record}`,
      );
    }
    return new CommandTemplate(argv, record);
  }

  /** Why `record` cannot be this template's record (it would become an option), or undefined. */
  recordProblem(record: string): string | undefined {
    return optionRecordProblem(record, this.optionSlots);
  }

  /** The argv of the task with `record` and sequence number `seq`. */
  render(record: string, seq: number): string[] {
    if (this.append) return [...this.argv, record];
    return this.argv.map((a) => (a.includes(this.record) || a.includes(SEQ) ? a.replace(this.placeholder, (m) => (m === SEQ ? String(seq) : record)) : a));
  }
}
