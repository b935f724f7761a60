/**
 * Where an argv holds code: the words that a program in it parses as a command line or as a
 * program instead of taking them as one argument. `gaxx run --tasks` refuses the record `{}` there
 * (template.ts). Every word of argv is looked at as a program, since wrappers (`nice`, `timeout 5`,
 * `env VAR=1`, `xargs`, `sudo -u U`, `busybox`...) run the words after them. RUNNERS says, per
 * program (by basename, a version suffix dropped: `python3.11`), which of its words are code,
 * reading its options as it reads them (getopt.ts, as getopt_long: clusters, `-cVALUE`,
 * `--long=VALUE`, abbreviations, `--`):
 * - a shell (programs.ts): the script after `-c` (clustered as `-ec`, after options as `bash --norc -c`);
 * - `flock LOCK -c CMD`, `script -c CMD`, `su -c CMD`, `runuser -c CMD` (or `--command`): CMD, run by a shell;
 * - `sg GROUP CMD` (or `sg GROUP -c CMD`): CMD, which sg runs with `/bin/sh -c`;
 * - `watch CMD...`: its command words, which it joins with spaces and runs with `sh -c` (not with -x);
 * - `env -S STRING`: STRING, which env splits into words itself (quotes, escapes, `${VAR}`), so a
 *   record in it would not stay one argument; its words and the rest of argv are looked into again;
 * - interpreters (interpreter-code.ts): `python3 -c`, `perl -e`/`-E` (and `-M`, `-F`, `-d:`),
 *   `ruby -e`, `node -e`/`-p`, `php -r`/`-B`/`-R`/`-E`; awk's program, sed's script (its `e`
 *   command runs shell), ssh's remote command and its `-o ProxyCommand=...` (and the like).
 * watch, sg, awk, sed and ssh need no option to run a word as code, so they count only where a
 * program stands (commandPosition: first, or after a wrapper that runs the words after it, as
 * `nice`, `timeout 5`, `unshare -r`, `chroot DIR`, `flock LOCK` do): `grep sed {}` is no sed.
 * Not looked into: other interpreters (`lua -e`, `Rscript -e`, `tclsh`, `deno eval`...), programs
 * that run a command line in a terminal or session of their own (`xterm -e`, `tmux new`,
 * `screen`), GNU parallel's command (run by a shell, like watch's), a file
 * named by the record (`python3 {}` runs it), environment variables that carry code (`PERL5OPT`,
 * `NODE_OPTIONS`), and remote paths that a remote shell parses (`scp host:{}`, `rsync host:{}`).
 * A record that would be read as an option (`ssh {} CMD` with `-oProxyCommand=CMD`) is no code
 * word: each such record is refused on its own (option-records.ts).
 */
import { getopt, optionCode, type Getopt, type Reader } from './getopt.js';
import { INTERPRETERS, OPERAND_INTERPRETERS } from './interpreter-code.js';
import { programOf, shellRun } from './programs.js';

/** A shell's code: its -c script (programs.ts reads the shell's words). */
const shellScript: Reader = (argv, at) => shellRun(argv, at).code;

const FLOCK: Getopt = { short: 'wE', long: ['wait', 'timeout', 'conflict-exit-code'], code: [], inOrder: true };
/** `flock [options] LOCK -c CMD`: flock takes -c only as the word right after the lock. */
function flockCommand(argv: readonly string[], at: number): string[] {
  const lock = getopt(argv, at, FLOCK).operand;
  const c = argv[lock + 1];
  return (c === '-c' || c === '--command') && lock + 2 < argv.length ? [argv[lock + 2] as string] : [];
}

const WATCH: Getopt = { short: 'nq', long: ['interval', 'equexit'], code: [], inOrder: true };
/** `watch [options] CMD...`: the command words, joined and run by `sh -c`, unless -x (--exec) runs them as argv. */
function watchCommand(argv: readonly string[], at: number): string[] {
  const read = getopt(argv, at, WATCH);
  return read.seen.has('-x') || read.seen.has('--exec') ? [] : argv.slice(read.operand);
}

/**
 * `sg [-] GROUP [-c] COMMAND`: COMMAND, which sg (shadow's) hands to `/bin/sh -c`, with `-c` or
 * without it; the words after it are not used.
 */
function sgCommand(argv: readonly string[], at: number): string[] {
  let i = at + 1;
  if (argv[i] === '-') i++;
  // The group, then an optional -c before the command.
  i++;
  if (argv[i] === '-c' && i + 1 < argv.length) i++;
  return i < argv.length ? [argv[i] as string] : [];
}

const ENV: Getopt = { short: 'CSu', long: ['chdir', 'split-string', 'unset'], code: ['-S', '--split-string'], inOrder: true };
/** `env -S STRING`: STRING itself, and the code of the argv env makes of it: `env WORDS... REST...`. */
function envSplit(argv: readonly string[], at: number): string[] {
  const read = getopt(argv, at, ENV);
  const rest = argv.slice(read.operand);
  // Each round drops the -S word, so the argv looked into again is shorter: this ends.
  return read.code.flatMap((s) => [s, ...shellCode(['env', ...splitWords(s), ...rest])]);
}

/** The words of env's -S string, closely enough to find a program and its options in them. */
function splitWords(s: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    let c = s[i] as string;
    if (c === quote) {
      quote = '';
      continue;
    }
    if (quote === '' && (c === "'" || c === '"')) {
      quote = c;
      word ??= '';
      continue;
    }
    if (quote === '' && /\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
      continue;
    }
    // A backslash escapes the next character (`\_` is a space), in single quotes only `\'` and `\\`.
    if (c === '\\' && i + 1 < s.length && (quote !== "'" || /['\\]/.test(s[i + 1] as string))) c = s[++i] === '_' ? ' ' : (s[i] as string);
    word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

const SU: Getopt = {
  short: 'cgGsPwu',
  long: ['command', 'session-command', 'group', 'supp-group', 'shell', 'whitelist-environment', 'user'],
  code: ['-c', '--command', '--session-command'],
  inOrder: false,
};
const SCRIPT: Getopt = {
  short: 'cEBIOTmo',
  long: ['command', 'echo', 'log-io', 'log-in', 'log-out', 'log-timing', 'logging-format', 'output-limit'],
  code: ['-c', '--command'],
  inOrder: false,
};

/** Programs that take code, other than the shells, by basename without a version suffix (`python3.11`). */
const RUNNERS = new Map<string, Reader>([
  ['flock', flockCommand],
  ['script', optionCode(SCRIPT)],
  ['su', optionCode(SU)],
  ['runuser', optionCode(SU)],
  ['watch', watchCommand],
  ['sg', sgCommand],
  ['env', envSplit],
  ...INTERPRETERS,
  ...OPERAND_INTERPRETERS,
]);
/**
 * Programs that need no option to run a word as code (`watch CMD`, `sg GROUP CMD`, `awk PROGRAM`, `ssh HOST CMD`):
 * only where a program stands (first, or run by a wrapper), else `grep watch {}` would be refused.
 */
const BY_POSITION = new Set(['watch', 'sg', ...OPERAND_INTERPRETERS.keys()]);

/**
 * Every word of argv that some program in it runs as code (or, for `env -S`, splits into words):
 * a shell's -c script, the command of `flock -c`, `script -c`, `su -c`, `runuser -c`, `sg`, the
 * command words of `watch`, the string of `env -S`, an interpreter's code (`python3 -c`, `perl -e`, awk's
 * program, sed's script, ssh's remote command...), wherever the program stands in argv.
 */
export function shellCode(argv: readonly string[]): string[] {
  return argv.flatMap((a, i) => {
    const { program, shell } = programOf(a);
    const reader = shell ? shellScript : RUNNERS.get(program);
    if (BY_POSITION.has(program) && !commandPosition(argv, i)) return [];
    return reader ? reader(argv, i) : [];
  });
}

/** Programs that run the command after their own options (nice -n 5 CMD, timeout 5 CMD...). */
const WRAPPERS = new Set([
  'nice',
  'nohup',
  'setsid',
  'stdbuf',
  'timeout',
  'env',
  'sudo',
  'doas',
  'runuser',
  'xargs',
  'chrt',
  'ionice',
  'taskset',
  'numactl',
  'prlimit',
  'setpriv',
  'unshare',
  'nsenter',
  'chroot',
  'flock',
  'time',
  'exec',
  'command',
  'busybox',
]);
/** Wrappers that take one operand before the command: `chroot DIR CMD`, `flock LOCK CMD`. */
const OPERAND_WRAPPERS = new Set(['chroot', 'flock']);
const baseName = (word: string | undefined): string => (word ?? '').split('/').pop() ?? '';

/**
 * Whether argv[i] is where a program is named: first, after `find -exec`, or after a wrapper and
 * what it takes before the program: options, their values (`sudo -u nobody`), numbers
 * (`timeout 5`), assignments (`env LC_ALL=C`), the directory of `chroot` and the lock of `flock`.
 */
function commandPosition(argv: readonly string[], i: number): boolean {
  if (/^-(?:exec|execdir|ok|okdir)$/.test(argv[i - 1] ?? '')) return true;
  for (let j = i - 1; j >= 0; j--) {
    const a = argv[j] as string;
    if (WRAPPERS.has(baseName(a))) return true;
    const before = argv[j - 1] ?? '';
    if (!/^-|^\d|^\w+=/.test(a) && !before.startsWith('-') && !OPERAND_WRAPPERS.has(baseName(before))) return false;
  }
  return true;
}
