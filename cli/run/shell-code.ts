/**
 * Where an argv holds code: the words that a program in it parses as a command line or as a
 * program instead of taking them as one argument. `gaxx run --tasks` refuses the record `{}` there
 * (template.ts). Every word of argv is looked at as a program, since wrappers (`nice`, `timeout 5`,
 * `env VAR=1`, `xargs`, `sudo -u U`, `busybox`, `strace -f`, `bwrap --ro-bind / /`...) run the
 * words after them. RUNNERS says, per program (by basename, a version suffix dropped: `python3.11`),
 * which of its words are code, reading its options as it reads them (getopt.ts, as getopt_long:
 * clusters, `-cVALUE`, `--long=VALUE`, abbreviations, `--`):
 * - a shell (SHELL): the script after `-c` (clustered as `-ec`, after options as `bash --norc -c`),
 *   fish's `-c` and `-C` (--init-command); capsh's `--` (and `-+`), which hands the words after it to bash;
 * - `flock LOCK -c CMD`, `script -c CMD`, `su -c CMD`, `runuser -c CMD` (or `--command`): CMD, run by a shell;
 * - `sg GROUP CMD` (or `sg GROUP -c CMD`): CMD, which sg runs with `/bin/sh -c`;
 * - `watch CMD...`: its command words, which it joins with spaces and runs with `sh -c` (not with -x);
 * - `env -S STRING`: STRING, which env splits into words itself (quotes, escapes, `${VAR}`), so a
 *   record in it would not stay one argument; its words and the rest of argv are looked into again;
 * - interpreters (interpreter-code.ts): `python3 -c`, `perl -e`/`-E` (and `-M`, `-F`, `-d:`),
 *   `ruby -e`, `node -e`/`-p`, `php -r`/`-B`/`-R`/`-E`; awk's program, sed's script (its `e`
 *   command runs shell), ssh's remote command and its `-o ProxyCommand=...` (and the like);
 * - options whose value is a command line or a program (command-options.ts): `git -c
 *   core.sshCommand=...` (and git's other command keys, `git config`, `clone -u`, `rebase --exec`...),
 *   `tar -I`/`--to-command`, `rsync -e`, `scp -S`, `make VAR=...`, `gdb -ex`, `strace -o '|CMD'`,
 *   GNU parallel's command.
 * watch, sg, awk, sed, ssh, make and parallel need no option to run a word as code, so they count
 * only where a program stands (programs.ts: first, or after a wrapper that runs the words after
 * it, as `nice`, `timeout 5`, `unshare -r`, `chroot DIR`, `flock LOCK`, `bwrap --bind A B` do): `grep sed {}` is no sed.
 * Not looked into: other interpreters (`lua -e`, `Rscript -e`, `tclsh`, `deno eval`...), programs
 * that run a command line in a terminal or session of their own (`xterm -e`, `tmux new`,
 * `screen`), containers and remote runners (`docker run`, `kubectl exec`), other wrappers than
 * those of programs.ts, a file named by the record (`python3 {}` runs it, `make -f {}`,
 * `git -C {}` reads that repository's configuration), environment variables that carry code
 * (`PERL5OPT`, `NODE_OPTIONS`, `env LD_PRELOAD={}`), and remote paths that a remote shell parses
 * (`scp host:{}`, `rsync host:{}`).
 * A record that would be read as an option (`ssh {} CMD` with `-oProxyCommand=CMD`) is no code
 * word: each such record is refused on its own (option-records.ts).
 */
import { COMMAND_OPTIONS, OPERAND_COMMANDS } from './command-options.js';
import { getopt, optionCode, type Getopt, type Reader } from './getopt.js';
import { INTERPRETERS, OPERAND_INTERPRETERS } from './interpreter-code.js';
import { capshShell, commandPositions, FLOCK, programOf, shellRun } from './programs.js';

/** A shell's code: its -c script (fish's -C too). */
const shellScript: Reader = (argv, at) => shellRun(argv, at).code;

/** capsh: the code of the bash that its `--` (or `-+`) runs with the words after it. */
const capshCode: Reader = (argv, at) => {
  const dashes = capshShell(argv, at);
  return dashes === undefined ? [] : shellRun(argv, dashes).code;
};

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
function envSplit(argv: readonly string[], at: number, record: string): string[] {
  const read = getopt(argv, at, ENV);
  const rest = argv.slice(read.operand);
  // Each round drops the -S word, so the argv looked into again is shorter: this ends.
  return read.code.flatMap((s) => [s, ...shellCode(['env', ...splitWords(s), ...rest], record)]);
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
  ['capsh', capshCode],
  ...INTERPRETERS,
  ...OPERAND_INTERPRETERS,
  ...COMMAND_OPTIONS,
  ...OPERAND_COMMANDS,
]);
/**
 * Programs that need no option to run a word as code (`watch CMD`, `sg GROUP CMD`, `awk PROGRAM`, `ssh HOST CMD`,
 * `make VAR=...`, `parallel CMD`): only where a program stands (first, or run by a wrapper), else `grep watch {}` would be refused.
 */
const BY_POSITION = new Set(['watch', 'sg', ...OPERAND_INTERPRETERS.keys(), ...OPERAND_COMMANDS.keys()]);

/**
 * Every word of argv that some program in it runs as code (or, for `env -S`, splits into words):
 * a shell's -c script, the command of `flock -c`, `script -c`, `su -c`, `runuser -c`, `sg`, the
 * command words of `watch`, the string of `env -S`, an interpreter's code (`python3 -c`, `perl -e`, awk's
 * program, sed's script, ssh's remote command...), an option's command (`git -c core.sshCommand=`,
 * `tar -I`, `rsync -e`...), wherever the program stands in argv. `record`: what stands for the
 * record, which could name an option's key (`ssh -o {}`, `git -c {}`).
 */
export function shellCode(argv: readonly string[], record = '{}'): string[] {
  const commandPosition = commandPositions(argv);
  return argv.flatMap((a, i) => {
    const { program, shell } = programOf(a);
    const reader = shell ? shellScript : RUNNERS.get(program);
    if (BY_POSITION.has(program) && !commandPosition(i)) return [];
    return reader ? reader(argv, i, record) : [];
  });
}
