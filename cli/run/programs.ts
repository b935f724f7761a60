/**
 * Which program each word of a command belongs to, and from where that program reads no more
 * options. A command is a chain: a wrapper (`nice`, `timeout 5`, `env VAR=1`, `sudo -u U`,
 * `xargs`, `bwrap --ro-bind / /`...) reads its own options and operands and runs the words after
 * them as a command of their own, whose program parses its own options; an interpreter runs its
 * script or module the same way (`python3 -m pip ARGS`, `sh script.sh ARGS`), and find each
 * `-exec` command. So a `--` ends the options of the program that reads it, and of no other:
 * in `env -- ssh {}` it is env's, and ssh still reads `{}` as an option (option-records.ts).
 *
 * walk() follows the chain from a word, reading each wrapper's options as it reads them (getopt.ts,
 * with every option listed): where a wrapper's words cannot be read for sure (an option not
 * listed, which a newer version may give a value, or one not looked into here: strace, systemd-run...),
 * the walk stops, and what follows is unknown: any word may be read as an option, any may be a
 * program. A program that is no wrapper known here is taken to read every word after it (so a
 * wrapper not known here is taken for the program, and its `--` for that program's).
 * commandPositions() tells shell-code.ts where a program may stand, by this walk from every
 * wrapper in argv and by a looser look back from the word.
 */
import { getopt, type Getopt, type Read } from './getopt.js';
import { PERL, PYTHON, SSH } from './interpreter-code.js';

/** Shells by basename, a version suffix too (`bash5`, `ksh93`). */
const SHELL = /^(?:sh|bash|rbash|dash|ash|zsh|ksh|mksh|lksh|pdksh|oksh|rksh|yash|posh|fish|csh|tcsh)(?:-?[\d.]+)?$/;
/** A version suffix of a program's name, as in `python3.11`, `perl5.36`, `ruby3.1`, `gawk-5.1.0`. */
const VERSION = /-?[\d.]+$/;
const baseName = (word: string | undefined): string => (word ?? '').split('/').pop() ?? '';

/**
 * The program the word `word` names: `program`, its basename without a version suffix (the key
 * of the readers: `python3.11` is python), and whether it is a shell (SHELL, by its basename).
 */
export function programOf(word: string): { program: string; shell: boolean } {
  const name = baseName(word);
  return { program: name.replace(VERSION, ''), shell: SHELL.test(name) };
}

/** What a shell runs: the code it runs (`-c`'s script, fish's `-C` too), where its words read as no option start, the script file it runs. */
export interface ShellRun {
  code: string[];
  /** Its words from here on are no option of the shell's (a -c script's positional parameters, after `--`). */
  data: number | undefined;
  /** The script file it runs, which reads the words after it. */
  file: number | undefined;
  /** Its options could not be read for sure. */
  unsure: boolean;
}

/** Shell options that take the next word as their argument (`-o pipefail`, `--rcfile FILE`). */
const SHELL_OPTIONS_WITH_ARGUMENT = /^[-+][A-Za-z]*[oO]$|^--(rcfile|init-file)$/;
/** fish: `-c CMD` takes its value as getopt does (`fish -d 3 -c CMD`), and `-C CMD` (--init-command) is code too. */
const FISH: Getopt = {
  short: 'cCdfDop',
  long: ['command', 'init-command', 'debug', 'features', 'debug-stack-frames', 'debug-output', 'profile', 'profile-startup'],
  flags: 'hPilNnv',
  longFlags: ['help', 'interactive', 'login', 'no-config', 'no-execute', 'print-rusage-self', 'print-debug-categories', 'private', 'version'],
  code: ['-c', '--command', '-C', '--init-command'],
  inOrder: true,
};

/**
 * How the shell at argv[at] reads its words: `sh [options] -c SCRIPT [ARG0 ARGS...]` (clustered
 * as `-ec`, after options as `bash --norc -c`, after `--`), `sh [options] [--] FILE ARGS...`,
 * `sh -s ARGS...` (the script from stdin), fish's `-c`/`--command` and `-C`/`--init-command`.
 */
export function shellRun(argv: readonly string[], at: number): ShellRun {
  if (baseName(argv[at]).startsWith('fish')) return fishRun(argv, at);
  let script = false;
  let stdin = false;
  // After the options, the first word is -c's script, else (no -s) the script file.
  const operand = (i: number): ShellRun =>
    script
      ? { code: i < argv.length ? [argv[i] as string] : [], data: i < argv.length ? i + 1 : undefined, file: undefined, unsure: false }
      : { code: [], data: i, file: stdin || i >= argv.length ? undefined : i, unsure: false };
  for (let i = at + 1; i < argv.length; i++) {
    const a = argv[i] as string;
    // `--` ends the options: the script (after -c) or the file follows it.
    if (a === '--') return operand(i + 1);
    const command = /^--command(?:=(.*))?$/s.exec(a);
    if (command) return { ...(command[1] !== undefined ? { code: [command[1]], data: i + 1, file: undefined } : scriptAt(argv, i + 1)), unsure: false };
    if (a.startsWith('--')) {
      if (SHELL_OPTIONS_WITH_ARGUMENT.test(a)) i++;
      continue;
    }
    if (/^[-+][A-Za-z]+$/.test(a)) {
      // -c, -ec, -xc, -lc ...: the script is the first word that is no option; -s reads it from stdin.
      if (a.startsWith('-') && a.includes('c')) script = true;
      if (a.startsWith('-') && a.includes('s')) stdin = true;
      if (SHELL_OPTIONS_WITH_ARGUMENT.test(a)) i++;
      continue;
    }
    // The first word that is no option (the script is not read for options, nor what follows it).
    const run = operand(i);
    return script ? run : { ...run, data: i + 1 };
  }
  return { code: [], data: undefined, file: undefined, unsure: false };
}

/** `--command SCRIPT`: the script is the next word, its arguments follow it. */
function scriptAt(argv: readonly string[], i: number): Omit<ShellRun, 'unsure'> {
  return i < argv.length ? { code: [argv[i] as string], data: i + 1, file: undefined } : { code: [], data: undefined, file: undefined };
}

function fishRun(argv: readonly string[], at: number): ShellRun {
  const read = getopt(argv, at, FISH);
  const data = afterOptions(read);
  const command = read.seen.has('-c') || read.seen.has('--command');
  return { code: read.code, data, file: command || read.operand >= argv.length ? undefined : read.operand, unsure: read.unknown };
}

/** Where a program that stops reading options at `--` or at its first operand reads no more: after the `--`, after the first operand. */
function afterOptions(read: Read): number {
  return read.dashes !== undefined ? read.dashes + 1 : read.operand + 1;
}

/** What the program at argv[at] does with the words after it. */
export interface Step {
  /** Its words from here on are read as no option by it (after its `--`, after the first operand where it stops reading options, a -c script's arguments); undefined: any may be. */
  data?: number;
  /** Where the program it runs is named (a wrapper's command, an interpreter's script or module). */
  command?: number;
  /** The name of that program when no word names it (capsh's `--` runs bash). */
  commandName?: string;
  /** find: the -exec commands, each from its first word to the `;` or `+` that ends it. */
  commands?: Array<[number, number]>;
  /** Its words could not be read for sure: what follows is unknown. */
  unsure?: boolean;
}
type Stepper = (argv: readonly string[], at: number) => Step;

/** How a wrapper reads its words before the command it runs. */
interface WrapperSpec {
  /** Every option it takes (flags given): an option not listed makes the reading unsure. */
  readonly options: Getopt;
  /** Operands it takes before the command: timeout's DURATION, chroot's DIR, flock's LOCK, chrt's PRIORITY, taskset's MASK. */
  readonly operands?: number;
  /** Words before the command that it takes as assignments (`env A=1`, `sudo A=1`). */
  readonly assignments?: RegExp;
  /** A `-` before the command is its own (`env - CMD`: an empty environment). */
  readonly dash?: boolean;
  /** Options with which it runs no command (`ionice -p PID`, `sudo -l`): the words after its options are its own. */
  readonly noCommand?: readonly string[];
  /** Options with which its options are not known to end where the reading says (env -S splits a string into words). */
  readonly unsure?: readonly string[];
}

/** A wrapper read as `spec` says. */
function wrapper(spec: WrapperSpec): Stepper {
  return (argv, at) => {
    const read = getopt(argv, at, spec.options);
    if (read.unknown || spec.unsure?.some((o) => read.seen.has(o))) return { unsure: true };
    const data = afterOptions(read);
    if (spec.noCommand?.some((o) => read.seen.has(o))) return { data: read.dashes !== undefined ? data : undefined };
    let command = read.operand;
    if (spec.dash === true && argv[command] === '-') command++;
    if (spec.assignments) while (command < argv.length && spec.assignments.test(argv[command] as string)) command++;
    command += spec.operands ?? 0;
    return { data, ...(command < argv.length ? { command } : {}) };
  };
}

const HELP = ['help', 'version'];
const ENV: WrapperSpec = {
  options: {
    short: 'CSua',
    long: ['chdir', 'split-string', 'unset', 'argv0'],
    flags: 'i0v',
    longFlags: ['ignore-environment', 'null', 'debug', 'block-signal', 'default-signal', 'ignore-signal', 'list-signal-handling', ...HELP],
    code: [],
    inOrder: true,
  },
  // coreutils env takes every word with a `=` before the command as an assignment.
  assignments: /=/,
  dash: true,
  unsure: ['-S', '--split-string'],
};
const SUDO: WrapperSpec = {
  options: {
    short: 'aCcDgpRrTtUu',
    attached: 'h',
    long: ['auth-type', 'close-from', 'login-class', 'chdir', 'group', 'host', 'prompt', 'chroot', 'role', 'type', 'command-timeout', 'other-user', 'user'],
    flags: 'ABbEeHiKklNnPSsVv',
    longFlags: [
      'askpass',
      'background',
      'bell',
      'preserve-env',
      'edit',
      'set-home',
      'login',
      'remove-timestamp',
      'reset-timestamp',
      'list',
      'non-interactive',
      'preserve-groups',
      'stdin',
      'shell',
      'validate',
      ...HELP,
    ],
    code: [],
    inOrder: true,
  },
  assignments: /^[A-Za-z_]\w*=/,
  noCommand: ['-e', '--edit', '-l', '--list', '-v', '--validate', '-K', '--remove-timestamp', '-V', '--version'],
};
const XARGS: Getopt = {
  short: 'aEILnsPd',
  attached: 'eil',
  long: ['arg-file', 'delimiter', 'max-args', 'max-chars', 'max-procs', 'process-slot-var'],
  flags: '0prtx',
  longFlags: ['null', 'eof', 'replace', 'max-lines', 'open-tty', 'interactive', 'verbose', 'show-limits', 'exit', 'no-run-if-empty', ...HELP],
  code: [],
  inOrder: true,
};
const PRLIMIT_RESOURCES = [
  'core',
  'data',
  'nice',
  'fsize',
  'sigpending',
  'memlock',
  'rss',
  'nofile',
  'msgqueue',
  'rtprio',
  'stack',
  'cpu',
  'nproc',
  'as',
  'locks',
  'rttime',
];
const NAMESPACES = ['mount', 'uts', 'ipc', 'net', 'pid', 'user', 'cgroup', 'time'];
const SETARCH: Getopt = {
  short: '',
  long: [],
  flags: 'hVv3BFILRSTXZ',
  longFlags: [
    '32bit',
    'fdpic-funcptrs',
    'short-inode',
    'addr-compat-layout',
    'addr-no-randomize',
    'whole-seconds',
    'sticky-timeouts',
    'read-implies-exec',
    'mmap-page-zero',
    '3gb',
    '4gb',
    'uname-2.6',
    'verbose',
    'list',
    ...HELP,
  ],
  code: [],
  inOrder: true,
};
/** bwrap's options by the number of words each takes after it (bwrap --help); it stops at `--` or at its first operand. */
const BWRAP_ARGS = new Map<string, number>([
  ...['args', 'userns', 'userns2', 'pidns', 'uid', 'gid', 'hostname', 'chdir', 'unsetenv', 'lock-file', 'sync-fd', 'remount-ro', 'exec-label'].map(
    (o): [string, number] => [o, 1],
  ),
  ...['file-label', 'proc', 'dev', 'tmpfs', 'mqueue', 'dir', 'seccomp', 'add-seccomp-fd', 'block-fd', 'userns-block-fd', 'info-fd', 'json-status-fd'].map(
    (o): [string, number] => [o, 1],
  ),
  ...['cap-add', 'cap-drop', 'perms', 'size', 'argv0', 'overlay-src', 'tmp-overlay', 'ro-overlay'].map((o): [string, number] => [o, 1]),
  ...['setenv', 'bind', 'bind-try', 'dev-bind', 'dev-bind-try', 'ro-bind', 'ro-bind-try', 'bind-fd', 'ro-bind-fd', 'file', 'bind-data', 'ro-bind-data'].map(
    (o): [string, number] => [o, 2],
  ),
  ...['symlink', 'chmod'].map((o): [string, number] => [o, 2]),
  ['overlay', 3],
  ...[
    'help',
    'version',
    'level-prefix',
    'unshare-all',
    'share-net',
    'unshare-user',
    'unshare-user-try',
    'unshare-ipc',
    'unshare-pid',
    'unshare-net',
    'unshare-uts',
    'unshare-cgroup',
    'unshare-cgroup-try',
    'disable-userns',
    'assert-userns-disabled',
    'clearenv',
    'new-session',
    'die-with-parent',
    'as-pid-1',
  ].map((o): [string, number] => [o, 0]),
]);

function bwrap(argv: readonly string[], at: number): Step {
  for (let i = at + 1; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') return { data: i + 1, ...(i + 1 < argv.length ? { command: i + 1 } : {}) };
    if (!a.startsWith('--')) return { data: i + 1, command: i };
    const n = BWRAP_ARGS.get(a.slice(2));
    // --args FD reads more arguments from a file descriptor: the command may be there.
    if (n === undefined || a === '--args') return { unsure: true };
    i += n;
  }
  return {};
}

/**
 * capsh: its options are single words (`--user=U`); `--` and `-+` run /bin/bash with the words
 * after (`capsh -- -c CMD`), `==` and `=+` capsh again.
 */
function capsh(argv: readonly string[], at: number): Step {
  for (let i = at + 1; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--' || a === '-+') return { data: i, command: i, commandName: 'bash' };
    if (a === '==' || a === '=+') return { data: i, command: i, commandName: 'capsh' };
    if (!a.startsWith('--')) return { unsure: true };
  }
  return {};
}

/** Where the bash that the capsh at argv[at] runs takes its words: its `--` (or `-+`), after any `==` (capsh again). */
export function capshShell(argv: readonly string[], at: number): number | undefined {
  let step = capsh(argv, at);
  // Each round moves on to a later word.
  while (step.command !== undefined && step.commandName === 'capsh') step = capsh(argv, step.command);
  return step.command;
}

/** busybox APPLET ARGS. */
function busybox(argv: readonly string[], at: number): Step {
  const applet = argv[at + 1];
  return applet === undefined ? {} : applet.startsWith('-') ? { unsure: true } : { data: at + 2, command: at + 1 };
}

/** `setarch ARCH [options] [PROGRAM...]`, and its links named after an architecture (`linux32 [options] PROGRAM`). */
function setarch(argv: readonly string[], at: number): Step {
  const arch = baseName(argv[at]) === 'setarch' ? at + 1 : at;
  if (arch > at && (argv[arch] ?? '-').startsWith('-')) return { unsure: true };
  return wrapper({ options: SETARCH })(argv, arch);
}

/** `ip netns exec NAME CMD`, `ip vrf exec NAME CMD`; any other `ip ... exec` is not known here. */
function ip(argv: readonly string[], at: number): Step {
  if (/^(?:netns|vrf)$/.test(argv[at + 1] ?? '') && argv[at + 2] === 'exec') return at + 4 < argv.length ? { data: at + 4, command: at + 4 } : {};
  return argv.slice(at + 1).includes('exec') ? { unsure: true } : final(argv, at);
}

/** `runuser -u USER -- CMD`: runuser permutes its options, so its command is known only after its `--`. */
function runuser(argv: readonly string[], at: number): Step {
  const read = getopt(argv, at, RUNUSER);
  if (read.unknown || read.dashes === undefined || !(read.seen.has('-u') || read.seen.has('--user')) || read.operands.length === 0) return { unsure: true };
  return { data: read.dashes + 1, command: read.dashes + 1 };
}
const RUNUSER: Getopt = {
  short: 'cgGsuw',
  long: ['command', 'session-command', 'group', 'supp-group', 'shell', 'user', 'whitelist-environment'],
  flags: 'flmpPhV',
  longFlags: ['fast', 'login', 'preserve-environment', 'pty', ...HELP],
  code: [],
  inOrder: false,
};

/**
 * Programs that run the command after their own options (and operands), by basename, and how
 * each reads those words; 'unsure' where that is not read here (the walk stops there).
 */
const WRAPPER_STEPS = new Map<string, Stepper | 'unsure'>([
  ['env', wrapper(ENV)],
  ['nice', wrapper({ options: { short: 'n', long: ['adjustment'], flags: '0123456789', longFlags: HELP, code: [], inOrder: true } })],
  ['nohup', wrapper({ options: { short: '', long: [], flags: '', longFlags: HELP, code: [], inOrder: true } })],
  ['setsid', wrapper({ options: { short: '', long: [], flags: 'cfwhV', longFlags: ['ctty', 'fork', 'wait', ...HELP], code: [], inOrder: true } })],
  ['stdbuf', wrapper({ options: { short: 'ioe', long: ['input', 'output', 'error'], flags: '', longFlags: HELP, code: [], inOrder: true } })],
  [
    'timeout',
    wrapper({
      options: {
        short: 'ks',
        long: ['kill-after', 'signal'],
        flags: 'vfp',
        longFlags: ['preserve-status', 'foreground', 'verbose', ...HELP],
        code: [],
        inOrder: true,
      },
      operands: 1,
    }),
  ],
  ['sudo', wrapper(SUDO)],
  ['doas', wrapper({ options: { short: 'Cu', long: [], flags: 'Lns', longFlags: [], code: [], inOrder: true }, noCommand: ['-C', '-L'] })],
  ['runuser', runuser],
  ['xargs', wrapper({ options: XARGS })],
  [
    'chrt',
    wrapper({
      options: {
        short: 'DPT',
        long: ['sched-deadline', 'sched-period', 'sched-runtime'],
        flags: 'abdfimoprRvhV',
        longFlags: ['batch', 'deadline', 'fifo', 'idle', 'other', 'rr', 'reset-on-fork', 'all-tasks', 'max', 'pid', 'verbose', ...HELP],
        code: [],
        inOrder: true,
      },
      operands: 1,
      noCommand: ['-p', '--pid', '-m', '--max'],
    }),
  ],
  [
    'ionice',
    wrapper({
      options: { short: 'cnpPu', long: ['class', 'classdata', 'pid', 'pgid', 'uid'], flags: 'thV', longFlags: ['ignore', ...HELP], code: [], inOrder: true },
      noCommand: ['-p', '--pid', '-P', '--pgid', '-u', '--uid'],
    }),
  ],
  [
    'taskset',
    wrapper({
      options: { short: '', long: [], flags: 'acphV', longFlags: ['all-tasks', 'pid', 'cpu-list', ...HELP], code: [], inOrder: true },
      operands: 1,
      noCommand: ['-p', '--pid'],
    }),
  ],
  [
    'prlimit',
    wrapper({
      options: {
        short: 'po',
        attached: 'cdefilmnqrstuvxy',
        long: ['pid', 'output'],
        flags: 'hV',
        longFlags: ['noheadings', 'raw', 'verbose', ...PRLIMIT_RESOURCES, ...HELP],
        code: [],
        inOrder: true,
      },
      noCommand: ['-p', '--pid'],
    }),
  ],
  [
    'setpriv',
    wrapper({
      options: {
        short: '',
        long: [
          'ambient-caps',
          'inh-caps',
          'bounding-set',
          'ruid',
          'euid',
          'rgid',
          'egid',
          'reuid',
          'regid',
          'groups',
          'securebits',
          'pdeathsig',
          'selinux-label',
          'apparmor-profile',
          'landlock-access',
          'landlock-rule',
          'seccomp-filter',
        ],
        flags: 'dhV',
        longFlags: ['dump', 'nnp', 'no-new-privs', 'clear-groups', 'keep-groups', 'init-groups', 'reset-env', ...HELP],
        code: [],
        inOrder: true,
      },
    }),
  ],
  [
    'unshare',
    wrapper({
      options: {
        short: 'RwSG',
        attached: 'muinpUCT',
        long: [
          'root',
          'wd',
          'setuid',
          'setgid',
          'map-user',
          'map-group',
          'map-users',
          'map-groups',
          'propagation',
          'setgroups',
          'monotonic',
          'boottime',
          'load-interp',
        ],
        flags: 'frchV',
        longFlags: [...NAMESPACES, 'fork', 'map-root-user', 'map-current-user', 'map-auto', 'kill-child', 'mount-proc', 'mount-binfmt', 'keep-caps', ...HELP],
        code: [],
        inOrder: true,
      },
    }),
  ],
  [
    'nsenter',
    wrapper({
      options: {
        short: 'tSGW',
        attached: 'muinpCUTrw',
        long: ['target', 'setuid', 'setgid', 'wdns'],
        flags: 'aFZehV',
        longFlags: [
          ...NAMESPACES,
          'all',
          'root',
          'wd',
          'preserve-credentials',
          'no-fork',
          'follow-context',
          'user-parent',
          'keep-caps',
          'env',
          'join-cgroup',
          ...HELP,
        ],
        code: [],
        inOrder: true,
      },
    }),
  ],
  [
    'chroot',
    wrapper({ options: { short: '', long: ['groups', 'userspec'], flags: '', longFlags: ['skip-chdir', ...HELP], code: [], inOrder: true }, operands: 1 }),
  ],
  ['flock', flock],
  [
    'time',
    wrapper({
      options: {
        short: 'of',
        long: ['output', 'format'],
        flags: 'apqvV',
        longFlags: ['append', 'portability', 'quiet', 'verbose', ...HELP],
        code: [],
        inOrder: true,
      },
    }),
  ],
  ['busybox', busybox],
  ['capsh', capsh],
  ['bwrap', bwrap],
  ['setarch', setarch],
  ['linux32', setarch],
  ['linux64', setarch],
  ['ssh-agent', wrapper({ options: { short: 'aEOPt', long: [], flags: 'cDdks', longFlags: [], code: [], inOrder: true }, noCommand: ['-k'] })],
  ['dbus-run-session', wrapper({ options: { short: '', long: ['config-file', 'dbus-daemon'], flags: '', longFlags: HELP, code: [], inOrder: true } })],
  ['valgrind', wrapper({ options: { short: '', long: [], flags: 'hvqd', longFlags: 'any', code: [], inOrder: true } })],
  ['sshpass', wrapper({ options: { short: 'pfdP', long: [], flags: 'evhV', longFlags: [], code: [], inOrder: true } })],
  [
    'runcon',
    wrapper({ options: { short: 'turl', long: ['type', 'user', 'role', 'range'], flags: 'c', longFlags: ['compute', ...HELP], code: [], inOrder: true } }),
  ],
  // Wrappers whose words are not read here: what follows them is unknown.
  ...[
    'strace',
    'ltrace',
    'systemd-run',
    'systemd-inhibit',
    'dbus-launch',
    'gdb',
    'perf',
    'fakeroot',
    'fakechroot',
    'faketime',
    'eatmydata',
    'nocache',
    'torsocks',
    'tsocks',
    'proxychains',
    'proxychains4',
    'pkexec',
    'unbuffer',
    'rlwrap',
    'xvfb-run',
    'cgexec',
    'firejail',
    'chpst',
    'catchsegv',
    'tini',
    'dumb-init',
    'numactl',
    'setuidgid',
    'envuidgid',
    'softlimit',
    'setlock',
    'envdir',
    'srun',
    'mpirun',
    'mpiexec',
    'schroot',
    'proot',
    'systemd-nspawn',
    'lxc-attach',
    'flatpak-spawn',
    'distrobox-enter',
    'sandbox-exec',
    'chronic',
    'ifne',
    'entr',
    'torify',
    'trickle',
    'cpulimit',
    'authbind',
    'caffeinate',
    'exec',
    'command',
  ].map((name): [string, 'unsure'] => [name, 'unsure']),
]);
/**
 * Programs that run a command from their words but are no wrapper for the look back of
 * commandPositions (their command is code to shell-code.ts already: `watch CMD`, `sg GROUP CMD`,
 * `su -c CMD`...): the walk stops at them.
 */
const NOT_WALKED = new Set(['watch', 'parallel', 'sem', 'sg', 'su', 'script']);

/** `flock [options] LOCK CMD...`; `flock LOCK -c CMD` runs CMD with a shell and no words after it. */
function flock(argv: readonly string[], at: number): Step {
  const step = wrapper({ options: FLOCK, operands: 1 })(argv, at);
  const c = step.command === undefined ? undefined : argv[step.command];
  return c === '-c' || c === '--command' ? { data: step.data } : step;
}
export const FLOCK: Getopt = {
  short: 'wE',
  long: ['wait', 'timeout', 'conflict-exit-code'],
  flags: 'sexnuoFhV',
  longFlags: ['shared', 'exclusive', 'unlock', 'nonblock', 'nb', 'close', 'no-fork', 'verbose', ...HELP],
  code: [],
  inOrder: true,
};

/**
 * Programs whose every option is known here, by name: a `--` among their words is read as they
 * read it (`grep -e -- {}`: the `--` is -e's pattern, and {} still an option).
 */
const FINAL_OPTIONS = new Map<string, Getopt>([
  ['ssh', SSH],
  ['scp', { short: 'cDFiJlMoPSX', long: [], flags: '012346ABCOpqRrsTv', longFlags: [], code: [], inOrder: true }],
  ['sftp', { short: 'BbcDFiJlPRosSX', long: [], flags: '1246AaCfhNpqrv', longFlags: [], code: [], inOrder: true }],
  ...['grep', 'egrep', 'fgrep'].map((g): [string, Getopt] => [
    g,
    {
      short: 'efmABCdD',
      long: [
        'regexp',
        'file',
        'max-count',
        'label',
        'binary-files',
        'directories',
        'devices',
        'include',
        'exclude',
        'exclude-from',
        'exclude-dir',
        'before-context',
        'after-context',
        'context',
        'group-separator',
      ],
      flags: 'EFGPiywxzsvVbnHhoqaIrRLlcTZU0123456789',
      longFlags: [
        'extended-regexp',
        'fixed-strings',
        'basic-regexp',
        'perl-regexp',
        'ignore-case',
        'no-ignore-case',
        'word-regexp',
        'line-regexp',
        'null-data',
        'no-messages',
        'invert-match',
        'byte-offset',
        'line-number',
        'line-buffered',
        'with-filename',
        'no-filename',
        'only-matching',
        'quiet',
        'silent',
        'text',
        'recursive',
        'dereference-recursive',
        'files-without-match',
        'files-with-matches',
        'count',
        'initial-tab',
        'null',
        'no-group-separator',
        'color',
        'colour',
        'binary',
        ...HELP,
      ],
      code: [],
      inOrder: false,
    },
  ]),
]);

/** Whether the word before a `--` could be an option that takes that `--` as its value (`-e`, `-fo`, `--regexp`). */
const mayTakeValue = (word: string): boolean => /^-[^-]/.test(word) || /^--[^=]+$/.test(word);

/**
 * A program that runs nothing after it (as far as known here): its options end at its `--` only
 * (GNU programs read options after operands too). Its `--` is read as its options say where they
 * are known (FINAL_OPTIONS), else the first `--` that no option before it may take as its value.
 */
function final(argv: readonly string[], at: number): Step {
  const options = FINAL_OPTIONS.get(programOf(argv[at] ?? '').program);
  if (options) {
    const read = getopt(argv, at, options);
    if (!read.unknown) return read.dashes === undefined ? {} : { data: read.dashes + 1 };
  }
  for (let i = at + 1; i < argv.length; i++) if (argv[i] === '--' && (i === at + 1 || !mayTakeValue(argv[i - 1] as string))) return { data: i + 1 };
  return {};
}

/**
 * find: the starting points and the expression are one list, and a word that starts with `-`
 * is a test or action even after `--` (`find -- -delete` deletes): no `--` keeps a record data.
 * Each `-exec`/`-execdir`/`-ok`/`-okdir` runs the words up to `;` (or `{} +`) as a command.
 */
function find(argv: readonly string[], at: number): Step {
  const commands: Array<[number, number]> = [];
  for (let i = at + 1; i < argv.length; i++) {
    if (!/^-(?:exec|execdir|ok|okdir)$/.test(argv[i] as string)) continue;
    let end = i + 1;
    while (end < argv.length && argv[end] !== ';' && !(argv[end] === '+' && argv[end - 1] === '{}')) end++;
    if (end > i + 1) commands.push([i + 1, end]);
    i = end;
  }
  return { commands };
}

/** python, pypy: `-c CODE ARGS` (ARGS are sys.argv: no option), `-m MOD ARGS` (the module reads ARGS), `SCRIPT ARGS`. */
function python(argv: readonly string[], at: number): Step {
  const read = getopt(argv, at, PYTHON);
  if (read.unknown) return { unsure: true };
  if (read.seen.has('-c')) return { data: read.operand };
  // The word that names the module (`-m MOD`, or `-mMOD`): the module reads the words after it.
  if (read.seen.has('-m')) return { data: read.operand, command: read.operand - 1 };
  return { data: afterOptions(read), ...(read.operand < argv.length ? { command: read.operand } : {}) };
}

/** perl: `-e CODE ARGS` (perl reads options up to its `--` or first operand), `SCRIPT ARGS`. */
function perl(argv: readonly string[], at: number): Step {
  const read = getopt(argv, at, PERL);
  if (read.unknown) return { unsure: true };
  // After -e, options end at perl's first operand or `--` only (`perl -e CODE -x` is perl's -x).
  if (read.seen.has('-e') || read.seen.has('-E')) return read.dashes === undefined ? {} : { data: read.dashes + 1 };
  return { data: afterOptions(read), ...(read.operand < argv.length ? { command: read.operand } : {}) };
}

function shell(argv: readonly string[], at: number): Step {
  const run = shellRun(argv, at);
  if (run.unsure) return { unsure: true };
  return { ...(run.data !== undefined ? { data: run.data } : {}), ...(run.file !== undefined ? { command: run.file } : {}) };
}

/** Interpreters that run a script or module, which reads the words after it; those whose options are not listed here (ruby, node, php) stop the walk. */
const INTERPRETER_STEPS = new Map<string, Stepper | 'unsure'>([
  ['python', python],
  ['pypy', python],
  ['perl', perl],
  ['ruby', 'unsure'],
  ['node', 'unsure'],
  ['nodejs', 'unsure'],
  ['php', 'unsure'],
]);

/** How the program named `name` (a word of argv, or capsh's bash) reads its words. */
function stepOf(name: string, argv: readonly string[], at: number): Step {
  const wrapping = WRAPPER_STEPS.get(baseName(name));
  const { program, shell: isShell } = programOf(name);
  const step =
    wrapping ??
    INTERPRETER_STEPS.get(program) ??
    (NOT_WALKED.has(program) ? 'unsure' : isShell ? shell : program === 'find' ? find : program === 'ip' ? ip : final);
  return step === 'unsure' ? { unsure: true } : step(argv, at);
}

/** A program in argv: where it is named (or, for capsh's bash, the `--` its words follow), its name, and from where it reads no option. */
export interface Program {
  at: number;
  name: string;
  data: number | undefined;
}

/** The programs of argv from the one at `from`, in order, and where the walk stopped unsure (what follows is unknown). */
export interface Walk {
  programs: Program[];
  unsure: number | undefined;
}

/** The chain of programs that starts with the one at argv[from] (see the header). */
export function walk(argv: readonly string[], from = 0): Walk {
  const programs: Program[] = [];
  const unsure = walkInto(argv, from, undefined, programs);
  programs.sort((a, b) => a.at - b.at);
  return { programs, unsure };
}

function walkInto(argv: readonly string[], from: number, name: string | undefined, into: Program[]): number | undefined {
  let at = from;
  let named = name;
  // Each step moves on to a later word: at most one program per word.
  for (let n = 0; at < argv.length && n <= argv.length; n++) {
    const program = named ?? (argv[at] as string);
    const step = stepOf(program, argv, at);
    into.push({ at, name: program, data: step.data });
    if (step.unsure) return at;
    for (const [first, end] of step.commands ?? []) {
      // find's -exec command ends at its `;`: the words after are find's again.
      const unsure = walkInto(argv.slice(0, end), first, undefined, into);
      if (unsure !== undefined) return unsure;
      into.push({ at: end, name: program, data: step.data });
    }
    if (step.command === undefined || step.command <= at) return undefined;
    at = step.command;
    named = step.commandName;
  }
  return undefined;
}

/** The program whose word argv[i] is (the last one named before it), in a walk. */
export function ownerOf(w: Walk, i: number): Program | undefined {
  return w.programs.findLast((p) => p.at < i);
}

/** Names of the wrappers (WRAPPER_STEPS), for the look back of commandPositions. */
const WRAPPERS = new Set(WRAPPER_STEPS.keys());
/** Wrappers that take an operand before the command: `chroot DIR CMD`, `flock LOCK CMD`, `setarch ARCH CMD`, `perf stat CMD`. */
const OPERAND_WRAPPERS = new Set(['chroot', 'flock', 'setarch', 'faketime', 'perf', 'setuidgid', 'envuidgid', 'setlock', 'envdir', 'cgexec']);

/**
 * Where a program may stand in argv: first; after `find -exec`; where a walk from a wrapper in
 * argv (walk()) names one; or, looking back from the word, after a wrapper and what it may take
 * before the program: options, their values (`sudo -u nobody`), numbers (`timeout 5`),
 * assignments (`env LC_ALL=C`), the operand of a wrapper that takes one (`chroot DIR`, `flock LOCK`).
 */
export function commandPositions(argv: readonly string[]): (i: number) => boolean {
  const walked = new Set<number>([0]);
  argv.forEach((a, i) => {
    if (i === 0 || WRAPPERS.has(baseName(a))) for (const p of walk(argv, i).programs) walked.add(p.at);
  });
  return (i) => walked.has(i) || lookBack(argv, i);
}

function lookBack(argv: readonly string[], i: number): boolean {
  if (/^-(?:exec|execdir|ok|okdir)$/.test(argv[i - 1] ?? '')) return true;
  for (let j = i - 1; j >= 0; j--) {
    const a = argv[j] as string;
    if (WRAPPERS.has(baseName(a))) return true;
    const before = argv[j - 1] ?? '';
    if (!/^-|^\d|^\w+=/.test(a) && !before.startsWith('-') && !OPERAND_WRAPPERS.has(baseName(before))) return false;
  }
  return true;
}
