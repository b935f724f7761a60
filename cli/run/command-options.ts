/**
 * Options (and words) whose value is a command line or a program that the program runs, for
 * shell-code.ts: the record there would be run, not passed. One table per program, as data:
 * - git: `-c KEY=VALUE` (and `--config-env`, `git config KEY VALUE`, `git clone -c`) for the
 *   keys whose value git runs (GIT_COMMAND_KEYS: core.sshCommand, core.pager, alias.* ...), or
 *   whose key the record would name; the options of subcommands that run a command
 *   (`clone -u`, `fetch --upload-pack`, `push --receive-pack`, `rebase --exec`, ...) and
 *   `submodule foreach CMD`;
 * - tar: `-I`/`--use-compress-program`, `--to-command`, `--rsh-command`, `--rmt-command`,
 *   `-F`/`--info-script`/`--new-volume-script`, `--checkpoint-action=exec=CMD`;
 * - rsync: `-e`/`--rsh`, `--rsync-path`;
 * - scp and sftp: `-S PROGRAM`, sftp's `-D COMMAND`, scp's `-D PATH`, and `-o ProxyCommand=...`
 *   as ssh's (interpreter-code.ts);
 * - make: `VAR=VALUE` words (make expands them into the recipes its shell runs: `make CC={}`),
 *   and `--eval`/`-E` text (makefile code);
 * - gdb: `-ex`, `-iex`, `--eval-command`, `--init-eval-command` (gdb's `shell` runs a command);
 * - strace: `-o |CMD` (or `!CMD`), and `-o {}`, whose record could start with `|`;
 * - GNU parallel (and its `sem`): its command words up to `:::` or `::::`, which it runs with a shell;
 * - `entr -s CMD`: CMD, run by a shell.
 * Keyed by basename without a version suffix. make and parallel take their code as operands,
 * so they count only where a program stands (BY_POSITION in shell-code.ts).
 */
import { getopt, optionCode, type Getopt, type Reader } from './getopt.js';
import { commandOptions } from './interpreter-code.js';

/**
 * git configuration keys whose value is a command (run by a shell, or a program git starts), or
 * whose value names one: a record there runs. Compared without case, as git does.
 */
const GIT_COMMAND_KEYS = [
  /^core\.(?:sshcommand|gitproxy|pager|editor|askpass|fsmonitor|alternaterefscommand|hookspath)$/i,
  /^sequence\.editor$/i,
  /^pager\./i,
  /^alias\./i,
  /^credential\.(?:.+\.)?helper$/i,
  /^diff\.external$/i,
  /^diff\..+\.(?:textconv|command)$/i,
  /^(?:diff|merge)tool\..+\.(?:cmd|path)$/i,
  /^merge\..+\.driver$/i,
  /^filter\..+\.(?:clean|smudge|process)$/i,
  /^gpg\.(?:.+\.)?program$/i,
  /^gpg\.ssh\.defaultkeycommand$/i,
  /^uploadpack\.packobjectshook$/i,
  /^remote\..+\.(?:uploadpack|receivepack)$/i,
  /^browser\..+\.(?:cmd|path)$/i,
  /^man\..+\.(?:cmd|path)$/i,
  /^sendemail\.(?:sendmailcmd|smtpserver|tocmd|cccmd|headercmd)$/i,
  /^submodule\..+\.update$/i,
  /^trailer\..+\.(?:command|cmd)$/i,
  /^interactive\.difffilter$/i,
  /^instaweb\.httpd$/i,
];

/** The `KEY=VALUE` words whose value git would run, or whose key the record would name (`-c {}`). */
function configCode(words: readonly string[], record: string): string[] {
  return words.filter((w) => {
    const key = w.split('=', 1)[0] as string;
    return key.includes(record) || GIT_COMMAND_KEYS.some((k) => k.test(key.trim()));
  });
}

/** git's own options, before the subcommand. */
const GIT: Getopt = {
  short: 'Cc',
  long: ['git-dir', 'work-tree', 'namespace', 'super-prefix', 'config-env'],
  code: ['-c', '--config-env'],
  inOrder: true,
};
/** git subcommands' options that run a command (the long ones abbreviated too, as git's parse-options allows). */
const GIT_SUBCOMMANDS = new Map<string, Getopt>([
  [
    'clone',
    {
      short: 'bcjou',
      long: ['upload-pack', 'config', 'origin', 'branch', 'reference', 'depth', 'jobs', 'template'],
      code: ['-u', '--upload-pack'],
      inOrder: false,
    },
  ],
  ...['fetch', 'pull', 'ls-remote', 'fetch-pack'].map((s): [string, Getopt] => [
    s,
    { short: 'j', long: ['upload-pack', 'exec', 'depth', 'jobs'], code: ['--upload-pack', '--exec'], inOrder: false },
  ]),
  ...['push', 'send-pack'].map((s): [string, Getopt] => [
    s,
    { short: 'o', long: ['receive-pack', 'exec', 'repo', 'push-option'], code: ['--receive-pack', '--exec'], inOrder: false },
  ]),
  ['archive', { short: 'o', long: ['exec', 'remote', 'output', 'format', 'prefix'], code: ['--exec'], inOrder: false }],
  ['rebase', { short: 'xsX', long: ['exec', 'onto', 'strategy', 'strategy-option'], code: ['-x', '--exec'], inOrder: false }],
  ['difftool', { short: 'xty', long: ['extcmd', 'tool'], code: ['-x', '--extcmd'], inOrder: false }],
  [
    'filter-branch',
    {
      short: 'd',
      long: ['env-filter', 'tree-filter', 'index-filter', 'parent-filter', 'msg-filter', 'commit-filter', 'tag-name-filter', 'subdirectory-filter', 'original'],
      code: ['--env-filter', '--tree-filter', '--index-filter', '--parent-filter', '--msg-filter', '--commit-filter', '--tag-name-filter'],
      inOrder: false,
    },
  ],
  [
    'send-email',
    {
      short: '',
      long: ['sendmail-cmd', 'to-cmd', 'cc-cmd', 'header-cmd', 'smtp-server'],
      code: ['--sendmail-cmd', '--to-cmd', '--cc-cmd', '--header-cmd', '--smtp-server'],
      inOrder: false,
    },
  ],
  ['grep', { short: 'efmABC', attached: 'O', long: ['file', 'max-count'], code: ['-O'], inOrder: false }],
]);
/** `git config`'s options that take a value (its KEY and VALUE are the operands after them). */
const GIT_CONFIG: Getopt = { short: 'f', long: ['file', 'blob', 'type', 'default', 'comment', 'value'], code: [], inOrder: false };

function gitCode(argv: readonly string[], at: number, record: string): string[] {
  const read = getopt(argv, at, GIT);
  const code = configCode(read.code, record);
  const sub = read.operand;
  const name = argv[sub];
  if (name === undefined) return code;
  if (name === 'config') {
    const operands = getopt(argv, sub, GIT_CONFIG).operands;
    // `git config set KEY VALUE` (git 2.46) and `git config KEY VALUE`.
    const [key, ...values] = /^(?:set|get|unset|list|edit|rename-section|remove-section)$/.test(operands[0] ?? '') ? operands.slice(1) : operands;
    if (key !== undefined && (key.includes(record) || GIT_COMMAND_KEYS.some((k) => k.test(key)))) code.push(key, ...values);
    return code;
  }
  // `git submodule [--quiet] foreach [--recursive] CMD...`: CMD runs in a shell.
  if (name === 'submodule') {
    const foreach = argv.indexOf('foreach', sub + 1);
    return foreach === -1 ? code : [...code, ...argv.slice(foreach + 1).filter((w) => !/^--?(?:recursive|quiet|q)$/.test(w))];
  }
  const options = GIT_SUBCOMMANDS.get(name);
  if (!options) return code;
  code.push(...getopt(argv, sub, options).code);
  // clone -c KEY=VALUE configures the new repository: its keys are looked into as git -c's are.
  if (name === 'clone') code.push(...configCode(getopt(argv, sub, { ...options, code: ['-c', '--config'] }).code, record));
  return code;
}

/** tar: its old-style first word (`tar xIf PROG ARCHIVE`) is a cluster whose letters take the next words in turn. */
const TAR: Getopt = {
  short: 'bCfFgHIKLNTVX',
  long: [
    'add-file',
    'after-date',
    'blocking-factor',
    'checkpoint-action',
    'directory',
    'exclude',
    'exclude-from',
    'file',
    'files-from',
    'format',
    'group',
    'index-file',
    'info-script',
    'label',
    'listed-incremental',
    'mode',
    'mtime',
    'new-volume-script',
    'newer',
    'newer-mtime',
    'owner',
    'record-size',
    'rmt-command',
    'rsh-command',
    'starting-file',
    'strip-components',
    'suffix',
    'tape-length',
    'to-command',
    'transform',
    'use-compress-program',
    'volno-file',
    'xform',
  ],
  code: ['-I', '--use-compress-program', '--to-command', '--rsh-command', '--rmt-command', '-F', '--info-script', '--new-volume-script'],
  inOrder: false,
};
/** tar's words with an old-style first word (`tar xIf PROG ARCHIVE`) written as options (`tar -x -I PROG -f ARCHIVE`). */
function tarWords(argv: readonly string[], at: number): string[] {
  const first = argv[at + 1];
  if (first === undefined || first === '' || first.startsWith('-')) return argv.slice(at);
  const rest = argv.slice(at + 2);
  const words = [argv[at] as string];
  for (const c of first) words.push(`-${c}`, ...(TAR.short.includes(c) && rest.length > 0 ? [rest.shift() as string] : []));
  return [...words, ...rest];
}
function tarCode(argv: readonly string[], at: number, record: string): string[] {
  const words = tarWords(argv, at);
  // --checkpoint-action runs its exec=CMD (the others print or wait), or whatever the record names.
  const actions = getopt(words, 0, { ...TAR, code: ['--checkpoint-action'] }).code.filter((v) => v.startsWith('exec') || v.startsWith(record));
  return [...getopt(words, 0, TAR).code, ...actions];
}

const RSYNC: Getopt = {
  short: 'BefMT@',
  long: [
    'rsh',
    'rsync-path',
    'block-size',
    'filter',
    'exclude',
    'include',
    'exclude-from',
    'include-from',
    'files-from',
    'temp-dir',
    'compare-dest',
    'copy-dest',
    'link-dest',
    'backup-dir',
    'suffix',
    'chmod',
    'chown',
    'usermap',
    'groupmap',
    'log-file',
    'log-file-format',
    'out-format',
    'password-file',
    'partial-dir',
    'port',
    'sockopts',
    'timeout',
    'contimeout',
    'bwlimit',
    'max-size',
    'min-size',
    'max-delete',
    'max-alloc',
    'modify-window',
    'compress-level',
    'compress-choice',
    'checksum-choice',
    'skip-compress',
    'iconv',
    'remote-option',
    'only-write-batch',
    'write-batch',
    'read-batch',
    'protocol',
    'outbuf',
    'stop-after',
    'stop-at',
    'address',
    'copy-as',
  ],
  code: ['-e', '--rsh', '--rsync-path'],
  inOrder: false,
};

/** scp, sftp: the program run as ssh (-S), sftp's local server command (-D), and -o options that run a command. */
const SCP: Getopt = { short: 'cDFiJlMoPSX', long: [], code: ['-S', '-D', '-o'], inOrder: true };
const SFTP: Getopt = { short: 'BbcDFiJlPRosSX', long: [], code: ['-S', '-D', '-o'], inOrder: true };
function secureCopy(options: Getopt): Reader {
  return (argv, at, record) => [
    ...getopt(argv, at, { ...options, code: ['-S', '-D'] }).code,
    ...commandOptions(getopt(argv, at, { ...options, code: ['-o'] }).code, record),
  ];
}

/** make: `--eval`/`-E` text, and the `VAR=VALUE` operands (GNU make permutes: options and operands mix). */
const MAKE: Getopt = {
  short: 'CfIoWE',
  attached: 'O',
  long: [
    'directory',
    'file',
    'makefile',
    'include-dir',
    'old-file',
    'assume-old',
    'what-if',
    'new-file',
    'assume-new',
    'eval',
    'jobserver-auth',
    'jobserver-style',
  ],
  code: ['-E', '--eval'],
  inOrder: false,
};
function makeCode(argv: readonly string[], at: number): string[] {
  const read = getopt(argv, at, MAKE);
  return [...read.code, ...read.operands.filter((w) => w.includes('='))];
}

/** gdb's options that run gdb commands (gdb reads `-ex` and `--ex` alike, `=VALUE` or the next word). */
const GDB_COMMAND = /^--?(?:ex|iex|eval-command|init-eval-command)(?:=|$)/;
function gdbCode(argv: readonly string[], at: number): string[] {
  const code: string[] = [];
  for (let i = at + 1; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--args') break;
    if (!GDB_COMMAND.test(a)) continue;
    const eq = a.indexOf('=');
    const value = eq === -1 ? argv[++i] : a.slice(eq + 1);
    if (value !== undefined) code.push(value);
  }
  return code;
}

const STRACE: Getopt = {
  short: 'abeEIoOpPsSuUX',
  long: ['output', 'attach', 'user', 'env', 'detach-on', 'columns', 'summary-sort-by', 'string-limit', 'trace-path', 'const-print-style'],
  code: ['-o', '--output'],
  inOrder: true,
};
/** strace -o: a file, unless it starts with `|` or `!`: then a command strace pipes its output to. */
function straceCode(argv: readonly string[], at: number, record: string): string[] {
  return getopt(argv, at, STRACE).code.filter((o) => /^[|!]/.test(o) || o.startsWith(record));
}

/** GNU parallel's options that take a value (enough to find where its command starts). */
const PARALLEL: Getopt = {
  short: 'aCdEIjlLnNPsS',
  long: [
    'arg-file',
    'colsep',
    'delimiter',
    'eof',
    'jobs',
    'max-procs',
    'max-args',
    'max-lines',
    'max-chars',
    'sshlogin',
    'joblog',
    'results',
    'tmpdir',
    'workdir',
    'env',
    'delay',
    'timeout',
    'retries',
    'memfree',
    'load',
    'nice',
    'tag-string',
    'tagstring',
    'rpl',
    'basefile',
    'return',
    'sshloginfile',
    'block',
    'recstart',
    'recend',
    'halt',
    'limit',
    'termseq',
    'transfer-file',
    'shebang-wrap',
  ],
  code: [],
  inOrder: true,
};
/** `parallel [options] CMD... ::: ARGS`: the command words, which it runs with a shell; none when it runs the input lines as commands. */
function parallelCommand(argv: readonly string[], at: number): string[] {
  const read = getopt(argv, at, PARALLEL);
  const words = argv.slice(read.operand);
  const end = words.findIndex((w) => /^::::?\+?$/.test(w));
  return end === -1 ? words : words.slice(0, end);
}

/** entr: with -s, its command is one word that it runs with $SHELL -c. */
const ENTR: Getopt = { short: '', long: [], code: [], inOrder: true };
function entrCommand(argv: readonly string[], at: number): string[] {
  const read = getopt(argv, at, ENTR);
  return read.seen.has('-s') && read.operand < argv.length ? [argv[read.operand] as string] : [];
}

/** Programs whose options (or words) carry a command, by basename without a version suffix. */
export const COMMAND_OPTIONS = new Map<string, Reader>([
  ['git', gitCode],
  ['tar', tarCode],
  ['gtar', tarCode],
  ['bsdtar', tarCode],
  ['rsync', optionCode(RSYNC)],
  ['scp', secureCopy(SCP)],
  ['sftp', secureCopy(SFTP)],
  ['gdb', gdbCode],
  ['strace', straceCode],
  ['entr', entrCommand],
]);
/** Programs whose code is among their operands: looked into only where a program stands. */
export const OPERAND_COMMANDS = new Map<string, Reader>([
  ['make', makeCode],
  ['gmake', makeCode],
  ['parallel', parallelCommand],
  ['sem', parallelCommand],
]);
