/**
 * The code words of interpreters other than shells, for shell-code.ts: what `python3 -c`,
 * `perl -e`, `ruby -e`, `node -e`, `php -r` run (INTERPRETERS), and awk's program, sed's script,
 * ssh's remote command (OPERAND_INTERPRETERS, code with no option before it). Each program's
 * options are read as it reads them, so that an option's value is not taken for the code or the
 * script (`python3 -W ignore -c CODE`, `perl -lne CODE`, `node -r MOD -e CODE`, `awk -F : PROG`),
 * and what comes after the script or after `python3 -m MOD` (the program's own arguments) is not
 * looked into. Keyed by basename without a version suffix (`python3.11`, `perl5.36`, `ruby3.1`).
 */
import { getopt, optionCode, type Getopt, type Read, type Reader } from './getopt.js';

/**
 * python, pypy: `-c CODE`, which ends the options, as `-m MOD` does (`-Bc CODE`, `-cCODE`).
 * -W, -X (and python2's -Q, pypy's --jit) take a value; long options only whole, the value next.
 * Every option is listed (python 2 and 3, pypy), for programs.ts to know where the script starts.
 */
export const PYTHON: Getopt = {
  short: 'cmQWX',
  long: ['check-hash-based-pycs', 'jit'],
  flags: 'bBdEhiIOPqsSuvVxR3tU?',
  longFlags: ['help', 'help-env', 'help-xoptions', 'help-all', 'version', 'info'],
  code: ['-c'],
  last: ['-c', '-m'],
  inOrder: true,
};

/**
 * perl: every `-e`/`-E` line (`-lne`, `-e'CODE'`). Perl also makes code of `-MMODULE...`
 * (`use MODULE...;`), `-F/PATTERN/` (`split(/PATTERN/)`) and `-d:MODULE` (`use Devel::MODULE`):
 * `-d:` reads as -d and an option ':' whose value is the module. -C, -D, -F, -i, -M, -m, -V, -x
 * take the rest of their word only; the digits after -l and -0 read as options without a value,
 * so the rest of the word is read on, as perl does (`-0777ne CODE`).
 */
export const PERL: Getopt = {
  short: 'eEI',
  attached: 'CDFiMmVx:=',
  long: [],
  flags: 'acdfghlnpsStTuUvwWX0123456789',
  longFlags: ['help', 'version'],
  code: ['-e', '-E', '-M', '-F', '-:', '-='],
  inOrder: true,
};

/** ruby: every `-e` line. -i, -x, -F take the rest of their word only, as does -W's `:category`. */
const RUBY: Getopt = {
  short: 'eCEIrX',
  attached: 'iFx:',
  long: ['enable', 'disable', 'encoding', 'external-encoding', 'internal-encoding', 'dump', 'backtrace-limit', 'crash-report', 'parser'],
  code: ['-e'],
  inOrder: true,
};

/** php: `-r CODE` and the code run before, for and after each input line, `-B`, `-R`, `-E` (`-r=CODE` too). */
const PHP: Getopt = {
  short: 'BcdEFfRrStz',
  long: [
    'process-begin',
    'php-ini',
    'define',
    'process-end',
    'process-file',
    'file',
    'process-code',
    'run',
    'server',
    'docroot',
    'zend-extension',
    'rf',
    'rfunction',
    'rc',
    'rclass',
    're',
    'rextension',
    'rz',
    'rzendextension',
    'ri',
    'rextinfo',
    'repeat',
  ],
  code: ['-r', '--run', '-B', '--process-begin', '-R', '--process-code', '-E', '--process-end'],
  inOrder: true,
};

/** node's options that take a value (`node --help`: `--name=...`), as written on the command line. */
const NODE_VALUES = new Set([
  '-C',
  '-r',
  '--allow-fs-read',
  '--allow-fs-write',
  '--build-snapshot-config',
  '--conditions',
  '--cpu-prof-dir',
  '--cpu-prof-interval',
  '--cpu-prof-name',
  '--debug-port',
  '--diagnostic-dir',
  '--disable-proto',
  '--disable-warning',
  '--dns-result-order',
  '--env-file',
  '--env-file-if-exists',
  '--experimental-config-file',
  '--experimental-default-type',
  '--experimental-policy',
  '--experimental-sea-config',
  '--heap-prof-dir',
  '--heap-prof-interval',
  '--heap-prof-name',
  '--heapsnapshot-near-heap-limit',
  '--heapsnapshot-signal',
  '--icu-data-dir',
  '--input-type',
  '--inspect-port',
  '--inspect-publish-uid',
  '--localstorage-file',
  '--max-http-header-size',
  '--network-family-autoselection-attempt-timeout',
  '--openssl-config',
  '--policy-integrity',
  '--redirect-warnings',
  '--report-dir',
  '--report-directory',
  '--report-filename',
  '--report-signal',
  '--require',
  '--run',
  '--secure-heap',
  '--secure-heap-min',
  '--snapshot-blob',
  '--test-concurrency',
  '--test-coverage-branches',
  '--test-coverage-exclude',
  '--test-coverage-functions',
  '--test-coverage-include',
  '--test-coverage-lines',
  '--test-isolation',
  '--test-name-pattern',
  '--test-reporter',
  '--test-reporter-destination',
  '--test-shard',
  '--test-skip-pattern',
  '--test-timeout',
  '--title',
  '--tls-cipher-list',
  '--tls-keylog',
  '--trace-event-categories',
  '--trace-event-file-pattern',
  '--trace-require-module',
  '--unhandled-rejections',
  '--use-largepages',
  '--v8-pool-size',
  '--watch-path',
]);
/** node's options whose value is code: a script, or a module to load first, which a `data:` URL makes code. */
const NODE_CODE = new Set(['-e', '--eval', '-p', '--print', '-pe', '--import', '--loader', '--experimental-loader']);

/**
 * node: `-e`/`--eval`, `-p`/`--print`/`-pe` CODE. node reads whole words (no clusters, `-pe` is
 * an alias), `--name=VALUE` or `--name VALUE`, and takes no value that starts with `-` (`node -p
 * -e CODE` is --print, then --eval CODE); the first word that is no option (the script) ends them.
 */
function nodeCode(argv: readonly string[], at: number): string[] {
  const code: string[] = [];
  for (let i = at + 1; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--' || a === '-' || !a.startsWith('-')) break;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq === -1 ? a : a.slice(0, eq);
    if (!NODE_VALUES.has(name) && !NODE_CODE.has(name)) continue;
    const next = argv[i + 1];
    const value = eq !== -1 ? a.slice(eq + 1) : next !== undefined && !next.startsWith('-') ? argv[++i] : undefined;
    if (value !== undefined && NODE_CODE.has(name)) code.push(value);
  }
  return code;
}

/** Interpreters whose code is the value of an option, by basename without a version suffix. */
export const INTERPRETERS = new Map<string, Reader>([
  ['python', optionCode(PYTHON)],
  ['pypy', optionCode(PYTHON)],
  ['perl', optionCode(PERL)],
  ['ruby', optionCode(RUBY)],
  ['php', optionCode(PHP)],
  ['node', nodeCode],
  ['nodejs', nodeCode],
]);

/**
 * awk, gawk, mawk, nawk: the program, the first operand unless -f, -e or -E (or their long forms) gave
 * it, and gawk's `-e`/`--source` text. -W names an implementation option, gawk's
 * `-W source=TEXT` among them, so its value counts as code. gawk's -d, -D, -L, -o, -p take the
 * rest of their word only.
 */
const AWK: Getopt = {
  short: 'FfvWeEilZ',
  attached: 'dDLop',
  long: ['field-separator', 'file', 'assign', 'source', 'exec', 'include', 'load', 'locale'],
  code: ['-e', '--source', '-W'],
  inOrder: true,
};
function awkProgram(argv: readonly string[], at: number): string[] {
  const read = getopt(argv, at, AWK);
  const given = ['-f', '-e', '-E', '--file', '--source', '--exec'].some((o) => read.seen.has(o));
  return given ? read.code : [...read.code, ...read.operands.slice(0, 1)];
}

/**
 * sed: the script, `-e`/`--expression` values, else the first operand (GNU sed's `e` command and
 * `s///e` run shell commands). GNU sed permutes: an operand may stand before an option.
 */
const SED: Getopt = { short: 'efl', attached: 'i', long: ['expression', 'file', 'line-length'], code: ['-e', '--expression'], inOrder: false };
function sedScript(argv: readonly string[], at: number): string[] {
  const read = getopt(argv, at, SED);
  const given = ['-e', '-f', '--expression', '--file'].some((o) => read.seen.has(o));
  return given ? read.code : read.operands.slice(0, 1);
}

/** ssh's options that take a value (`man ssh`; -P is newer OpenSSH's tag), and those that take none. */
export const SSH: Getopt = { short: 'BbcDEeFIiJLlmOoPpQRSWw', long: [], flags: '1246AaCfGgKkMNnqsTtVvXxYy', longFlags: [], code: ['-o'], inOrder: true };
/** `-o` options that make ssh (scp, sftp) run a command: the key (before `=` or a space), case-insensitive. */
const COMMAND_OPTION = /^\s*(?:ProxyCommand|LocalCommand|RemoteCommand|KnownHostsCommand)(?:[\s=]|$)/i;
/** The `-o` values of ssh, scp or sftp that run a command: ProxyCommand... or one whose key holds the record (which could name any option). */
export function commandOptions(values: readonly string[], record: string): string[] {
  return values.filter((o) => COMMAND_OPTION.test(o) || (/^\s*[^\s=]*/.exec(o)?.[0] ?? '').includes(record));
}
/**
 * `ssh [options] DESTINATION [options] [COMMAND...]`: the command words, which ssh joins with
 * spaces for the remote user's shell, and -o options that run a command (ProxyCommand... or one
 * whose key is {}, which the record would name). ssh reads options after the destination too,
 * unless `--` came before it. The destination is no code.
 */
function sshCommand(argv: readonly string[], at: number, record: string): string[] {
  const before = getopt(argv, at, SSH);
  const destination = before.operand;
  const options = (read: Read): string[] => commandOptions(read.code, record);
  if (destination >= argv.length) return options(before);
  if (argv[destination - 1] === '--') return [...options(before), ...argv.slice(destination + 1)];
  const after = getopt(argv, destination, SSH);
  return [...options(before), ...options(after), ...argv.slice(after.operand)];
}

/**
 * Programs whose code needs no option (awk's program, sed's script, ssh's command), by basename
 * without a version suffix: looked into only where a program stands, else `grep sed {}` is refused.
 */
export const OPERAND_INTERPRETERS = new Map<string, Reader>([
  ['awk', awkProgram],
  ['gawk', awkProgram],
  ['mawk', awkProgram],
  ['nawk', awkProgram],
  ['sed', sedScript],
  ['ssh', sshCommand],
]);
