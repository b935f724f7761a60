/**
 * Command-line dispatch and THE error funnel: resolves the command from the table, parses its
 * flags strictly, loads the config, runs it, and turns every failure into one stderr line and
 * a documented exit code. main.ts feeds it the process's argv, env and streams.
 */
import { fileURLToPath } from 'node:url';
import { GaxxError, exitCodeFor, fileAccessError, packageVersion, printable } from '../proto/index.js';
import { COMMANDS, type CommandEntry } from './commands.js';
import { CONFIG_FLAGS, misspeltEnv, type ReadFile } from './settings.js';
import type { GaxxConfig } from './config.js';
import { commandHelp, groupHelp, programHelp } from './help.js';
import { parseCommandLine, refuseNonUtf8Words, unknownSubcommand, usage } from './command-line.js';
import { didYouMean } from './suggest.js';
import { refuseSharedDirs } from './paths.js';
import { Output, type Io } from './output.js';

/** Exit code of a bare Error reaching the funnel (EX_SOFTWARE): always a bug. */
export const INTERNAL_EXIT = 70;

export interface CliInput {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  io: Io;
  readFile: ReadFile;
  /** The user's home directory, for the default paths; read only when one of them is used (not with GAXX_HOME). */
  readonly homeDir: string;
  /** The OS user's name, for the default operator name; read only when that is needed. */
  readonly userName: string;
  cwd: string;
  /** Aborted by main.ts on the first Ctrl-C, SIGTERM, SIGHUP or closed stdout, for commands that declare `handlesInterrupt`. */
  signal: AbortSignal;
  /**
   * Called when the command being run can cancel its work on Ctrl-C, with what Ctrl-C then does
   * (null: the command says it itself, once it knows: Command.saysStop).
   */
  onInterruptible?: (note: string | null) => void;
  /**
   * The bytes of argv's words as the process got them, or undefined when they cannot be read;
   * asked only when a word holds U+FFFD, to refuse one that was not UTF-8 (refuseNonUtf8Words).
   */
  argvBytes?: () => readonly Buffer[] | undefined;
}

/** Runs one command line; resolves to the exit code. Never throws. */
export async function runCli(input: CliInput): Promise<number> {
  // Known before anything is parsed: a failure at any stage (flag parsing included) is reported as --json asked.
  const json = wantsJson(input.argv);
  try {
    return await dispatch(input);
  } catch (e) {
    return reportError(await knownFailure(e), input.io, input.env.GAXX_DEBUG === '1', json);
  }
}

/**
 * A failure that is not a bug though no command put it in its own words: one of the queue's Redis
 * client (a request Redis left unanswered, a connection closed under it, a refusal) is
 * REDIS_UNAVAILABLE. What tells them apart is loaded only for an error that is not gaxx's already
 * (`gaxx --version` loads none of it).
 */
export async function knownFailure(e: unknown): Promise<unknown> {
  if (!(e instanceof Error) || e instanceof GaxxError) return e;
  try {
    const { isRedisClientError, redisError } = await import('../scheduler/light/index.js');
    return isRedisClientError(e) ? redisError(e, "the queue's Redis") : e;
  } catch {
    return e;
  }
}

/**
 * Whether the command line asks for --json (before any `--`: what follows is the command's own
 * argv). Read from the words themselves, so that an error found while the flags are parsed, or
 * an exception no command caught, is still reported as one JSON object on stdout.
 */
export function wantsJson(argv: readonly string[]): boolean {
  const dash = argv.indexOf('--');
  return (dash === -1 ? argv : argv.slice(0, dash)).includes('--json');
}

/** The error funnel: one line on stderr, and the exit code for it (with --json, also one object on stdout). */
export function reportError(e: unknown, io: Io, debug = false, json = false): number {
  // A permission or disk problem is the user's to fix, not a bug: name the path and the fix.
  const fsErr = e instanceof GaxxError ? undefined : fileAccessError(e, FILE_HINT(e));
  if (fsErr) e = fsErr;
  if (e instanceof GaxxError) {
    // One line, whatever the message quotes (a name read from Redis, an agent's reply).
    io.stderr.write(`gaxx: ${printable(e.message)} [${e.code}]\n`);
    const exitCode = exitCodeFor(e.code);
    // With --json, scripts read stdout: they get the failure there too, as one object.
    if (json) io.stdout.write(`${JSON.stringify({ error: { code: e.code, message: e.message, exitCode } })}\n`);
    return exitCode;
  }
  const msg = e instanceof Error ? e.message : String(e);
  io.stderr.write(`gaxx: internal error (this is a bug): ${printable(msg)}\n`);
  if (debug && e instanceof Error && e.stack) io.stderr.write(`${e.stack}\n`);
  if (json) io.stdout.write(`${JSON.stringify({ error: { code: 'INTERNAL', message: `internal error (this is a bug): ${msg}`, exitCode: INTERNAL_EXIT } })}\n`);
  return INTERNAL_EXIT;
}

/** What to suggest for a path the CLI cannot write. */
function FILE_HINT(e: unknown): string | undefined {
  const path = (e as NodeJS.ErrnoException | null)?.path;
  return path ? `check the owner and mode of ${path} (ls -ld), or point GAXX_HOME (--home) at a directory you own` : undefined;
}

/** gaxx's version (from the package.json above this module, in src, dist and the bundle). */
export function version(): string {
  return packageVersion(fileURLToPath(import.meta.url)) ?? 'unknown';
}

/** The first words (after global flags) that ask for the program's help, and for its version. */
export const HELP_WORDS: readonly string[] = ['--help', '-h', 'help'];
export const VERSION_WORDS: readonly string[] = ['--version', '-V'];

/**
 * The answer to a command line that names no command but asks for the program's help or its
 * version (after any global flags), else undefined. The bundle's entry asks this of a small file
 * (cli/front.ts) before it loads the CLI's commands at all.
 */
export function programAnswer(argv: readonly string[]): string | undefined {
  const dash = argv.indexOf('--');
  const [first = '', second] = leadingGlobals(dash === -1 ? argv : argv.slice(0, dash)).after;
  // `gaxx help run` is run's help (dispatch's), `gaxx help` and `gaxx --help run` the program's.
  if (first === 'help' && second !== undefined && !second.startsWith('-')) return undefined;
  if (HELP_WORDS.includes(first)) return programHelp(COMMANDS, version());
  if (VERSION_WORDS.includes(first)) return version();
  return undefined;
}

async function dispatch(input: CliInput): Promise<number> {
  const { io } = input;
  // Before anything else: no command sends, runs or opens a word whose bytes Node changed.
  refuseNonUtf8Words(input.argv, input.argvBytes);
  const dash = input.argv.indexOf('--');
  const all = dash === -1 ? [...input.argv] : input.argv.slice(0, dash);
  // Global flags may come before the command (`gaxx --home D certs list`).
  const { globals, after: pre } = leadingGlobals(all);
  const rest = dash === -1 ? [] : input.argv.slice(dash + 1);
  const first = pre[0];
  if (first === undefined) {
    io.stderr.write(`${programHelp(COMMANDS, version())}\n`);
    throw usage('no command given');
  }
  const answer = programAnswer(input.argv);
  if (answer !== undefined) return print(io, answer);
  if (first === 'help') return print(io, await helpFor(pre.slice(1)));
  const { entry, words } = resolveCommand(pre);
  const args = pre.slice(words);
  // --version and -V are global flags: after a command too (`gaxx ls --version`).
  if (args.some((a) => VERSION_WORDS.includes(a))) return print(io, version());
  const wantsHelp = args.includes('--help') || args.includes('-h');
  if (!entry) {
    if (wantsHelp || args.length === 0) {
      if (wantsHelp) return print(io, groupHelp(first, COMMANDS));
      io.stderr.write(`${groupHelp(first, COMMANDS)}\n`);
    }
    throw usage(`'${first}' needs a subcommand`);
  }
  const { command } = await entry.load();
  if (wantsHelp) return print(io, commandHelp(command));
  // `--` ends the options: what follows is a takesRest command's own argv, and any other
  // command's positionals (`gaxx cp -- -file F:dir/`: a name that starts with a dash).
  const own = command.takesRest || dash === -1;
  const parsed = parseCommandLine(entry, command, own ? args : [...args, '--', ...rest], globals);
  // Imported here, not at the top: its validation (zod) is not needed for --help or --version.
  const { loadConfig } = await import('./config.js');
  const load = (): GaxxConfig => {
    const config = loadConfig({
      argv: [...globals, ...args],
      env: input.env,
      readFile: input.readFile,
      get homeDir() {
        return input.homeDir;
      },
      get userName() {
        return input.userName;
      },
      cwd: input.cwd,
      command: entry.name,
    });
    refuseSharedDirs(config.paths);
    return config;
  };
  const config = command.config === 'on-use' ? loadedOnUse(load) : load();
  if (command.handlesInterrupt) input.onInterruptible?.(command.saysStop ? null : (command.interruptNote ?? 'cancelling'));
  const out = new Output(io, parsed.values.json === true);
  // A misspelt setting is read by nothing: said, or it would be lost without a word.
  for (const { name, meant } of misspeltEnv(input.env)) out.note(`gaxx: ${name} is not a setting gaxx reads (ignored); did you mean ${meant}?`);
  return command.run({
    flags: parsed.values,
    positionals: parsed.positionals,
    rest: own ? rest : [],
    hasRest: dash !== -1,
    config,
    out,
    io,
    signal: input.signal,
    commands: COMMANDS,
  });
}

/**
 * The configuration of a command that declares `config: 'on-use'`: loaded (and its dirs checked)
 * when run() first reads a setting of it, so a command that reads none never fails on a broken
 * config file; a read throws what loading found wrong, every time.
 */
function loadedOnUse(load: () => GaxxConfig): GaxxConfig {
  let loaded: GaxxConfig | undefined;
  const target = (): GaxxConfig => (loaded ??= load());
  return new Proxy({} as GaxxConfig, {
    get: (_, key) => Reflect.get(target(), key),
    has: (_, key) => Reflect.has(target(), key),
    ownKeys: () => Reflect.ownKeys(target()),
    getOwnPropertyDescriptor: (_, key) => {
      const d = Reflect.getOwnPropertyDescriptor(target(), key);
      return d && { ...d, configurable: true };
    },
  });
}

/** Splits global flags (`--home D`, `--redis-url=U`, ...) off the front of the command line. */
function leadingGlobals(args: readonly string[]): { globals: string[]; after: string[] } {
  let i = 0;
  while (i < args.length) {
    const a = args[i] as string;
    const m = /^--([a-z-]+)(=.*)?$/.exec(a);
    if (!m || !((m[1] as string) in CONFIG_FLAGS)) break;
    // A boolean flag (--redis-insecure) takes no value: the word after it is the command.
    if (m[2] !== undefined || CONFIG_FLAGS[m[1] as string]?.type === 'boolean') i += 1;
    else {
      if (i + 1 >= args.length) throw usage(`${a} needs a value`);
      i += 2;
    }
  }
  return { globals: args.slice(0, i), after: args.slice(i) };
}

function print(io: Io, text: string): number {
  io.stdout.write(`${text}\n`);
  return 0;
}

/** `gaxx help CMD [SUB]`: the command's help, or its group's; an unknown one as `gaxx CMD` would say. */
async function helpFor(words: readonly string[]): Promise<string> {
  const { entry } = resolveCommand(words);
  if (!entry) return groupHelp(words[0] as string, COMMANDS);
  return commandHelp((await entry.load()).command);
}

/** The table entry named by the leading words of the command line (longest match wins). */
function resolveCommand(pre: readonly string[]): { entry: CommandEntry | undefined; words: number } {
  const words: string[] = [];
  for (const w of pre) {
    if (w.startsWith('-')) break;
    words.push(w);
  }
  for (let n = Math.min(words.length, 3); n > 0; n--) {
    const name = words.slice(0, n).join(' ');
    const entry = COMMANDS.find((c) => c.name === name);
    if (entry) return { entry, words: n };
  }
  const first = words[0] ?? pre[0] ?? '';
  if (COMMANDS.some((c) => c.name.startsWith(`${first} `))) {
    if (words.length > 1) throw unknownSubcommand(first, words[1] as string);
    return { entry: undefined, words: 1 };
  }
  // `gaxx --verison`: the closest of the program's own flags; `gaxx rnu`: the closest command.
  const flag = /^--([\w-]+)/.exec(first)?.[1];
  const hint =
    flag !== undefined
      ? didYouMean(flag, ['help', 'version', ...Object.keys(CONFIG_FLAGS)], (f) => `--${f}`)
      : didYouMean(first, new Set(COMMANDS.map((c) => c.name.split(' ')[0] as string)));
  throw usage(`unknown command '${first}'${hint}`);
}
