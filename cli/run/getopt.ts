/**
 * How the programs of shell-code.ts, interpreter-code.ts and programs.ts read their options,
 * closely enough to tell an option's value from an operand: clusters (`-ec`), `-cVALUE`,
 * `--long=VALUE`, abbreviations, `--`, as getopt_long reads them.
 */

/** The code words of argv whose program stands at argv[at]; `record` is what stands for the task's record (`{}`). */
export type Reader = (argv: readonly string[], at: number, record: string) => string[];

/** How a program reads its options (as getopt_long does), and which of them carry code. */
export interface Getopt {
  /** Short options that take a value (`-w 5`, `-w5`). */
  readonly short: string;
  /** Short options whose value is the rest of their word only, never the next word (getopt's `x::`: `sed -i.bak`, `perl -Mstrict`). */
  readonly attached?: string;
  /** Long options that take a value (`--wait 5`, `--wait=5`, or an abbreviation such as `--wa 5`). */
  readonly long: readonly string[];
  /**
   * Short options that take no value. Given, the lists name every option of the program, so that
   * one in none of them is `unknown` in the Read: a newer version's option may take a value, and
   * where the operands start is then not known.
   */
  readonly flags?: string;
  /** With `flags`: the long options that take no value, or a value only after `=` (`--mount[=FILE]`); 'any': every long option not in `long` (valgrind's `--tool=memcheck`). */
  readonly longFlags?: readonly string[] | 'any';
  /** The options among those whose value is code. */
  readonly code: readonly string[];
  /** Options that end the options with their value (python's `-c CODE` and `-m MOD`: the words after are the program's). */
  readonly last?: readonly string[];
  /** Options end at the first operand (getopt's '+': env, flock, watch), not only at `--`. */
  readonly inOrder: boolean;
}

/** What getopt read: the values of code options, the options seen, and the operands. */
export interface Read {
  code: string[];
  seen: Set<string>;
  /** Where the operands start when options end before argv does (first operand, after `--`). */
  operand: number;
  /** The words that are no option, in order. */
  operands: string[];
  /** Where the `--` that ended the options stands, if one did. */
  dashes: number | undefined;
  /** An option that the complete lists (`flags`) do not name was seen: what follows it is not known for sure. */
  unknown: boolean;
}

/** The long option `name` (no `--`) names, as getopt_long matches it: exactly, else as the one option it abbreviates. */
function longOption(name: string, o: Getopt): { long: string | undefined; known: boolean } {
  if (o.flags === undefined) return { long: o.long.find((l) => l.startsWith(name)), known: true };
  if (o.long.includes(name)) return { long: name, known: true };
  if (o.longFlags === 'any') return { long: undefined, known: true };
  const flags = o.longFlags ?? [];
  if (flags.includes(name)) return { long: undefined, known: true };
  const values = o.long.filter((l) => l.startsWith(name));
  const others = flags.filter((l) => l.startsWith(name));
  // No option, or an ambiguous abbreviation (getopt_long refuses it): nothing is known for sure.
  if (values.length + others.length !== 1) return { long: undefined, known: false };
  return { long: values[0], known: true };
}

/** Reads the options of the program at argv[at] as `o` says it reads them. */
export function getopt(argv: readonly string[], at: number, o: Getopt): Read {
  const read: Read = { code: [], seen: new Set(), operand: argv.length, operands: [], dashes: undefined, unknown: false };
  // Options end at i: the words from there are operands.
  const end = (i: number): Read => ({ ...read, operand: i, operands: [...read.operands, ...argv.slice(i)] });
  for (let i = at + 1; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') return { ...end(i + 1), dashes: i };
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq === -1 ? undefined : eq);
      // getopt_long takes any unambiguous prefix: match it to the option that takes a value.
      const { long, known } = name === '' ? { long: undefined, known: false } : longOption(name, o);
      if (!known) read.unknown = true;
      read.seen.add(`--${long ?? name}`);
      if (long === undefined) continue;
      const value = eq === -1 ? argv[++i] : a.slice(eq + 1);
      if (value !== undefined && o.code.includes(`--${long}`)) read.code.push(value);
      if (o.last?.includes(`--${long}`)) return end(i + 1);
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j] as string;
        read.seen.add(`-${c}`);
        const attached = o.attached?.includes(c) === true;
        if (!attached && !o.short.includes(c)) {
          if (o.flags !== undefined && !o.flags.includes(c)) read.unknown = true;
          continue;
        }
        const value = j + 1 < a.length || attached ? a.slice(j + 1) : argv[++i];
        if (value !== undefined && o.code.includes(`-${c}`)) read.code.push(value);
        if (o.last?.includes(`-${c}`)) return end(i + 1);
        break;
      }
      continue;
    }
    if (o.inOrder) return end(i);
    read.operands.push(a);
  }
  return read;
}

/** A reader for a program whose only code is the value of some of its options (`script -c CMD`). */
export const optionCode =
  (o: Getopt): Reader =>
  (argv, at) =>
    getopt(argv, at, o).code;
