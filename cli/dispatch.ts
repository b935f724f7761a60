/**
 * Command-line dispatch and THE error funnel: resolves the command from the table, parses its
 * flags strictly, loads the config, runs it, and turns every failure into one stderr line and
 * a documented exit code. main.ts feeds it the process's argv, env and streams.
 */
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GaxxError, exitCodeFor, fileAccessError, packageVersion, printable } from '../proto/index.js';
import type { Command, FlagValues } from './command.js';
import { COMMANDS, type CommandEntry } from './commands.js';
import { CONFIG_FLAGS, type ReadFile } from './settings.js';
import { commandHelp, groupHelp, programHelp } from './help.js';
import { refuseSharedDirs, type ModeOf } from './paths.js';
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
  /** Aborted by main.ts on the first Ctrl-C, for commands that declare `handlesInterrupt`. */
  signal: AbortSignal;
  /** Called when the command being run can cancel its work on Ctrl-C. */
  onInterruptible?: () => void;
  /** Mode bits of a path (default: stat); the installation's dirs must not be group/world-writable. */
  modeOf?: ModeOf;
}

const modeOfPath: ModeOf = (p) => {
  try {
    return statSync(p).mode;
  } catch {
    return undefined;
  }
};

/** Runs one command line; resolves to the exit code. Never throws. */
export async function runCli(input: CliInput): Promise<number> {
  // Known before anything is parsed: a failure at any stage (flag parsing included) is reported as --json asked.
  const json = wantsJson(input.argv);
  try {
    return await dispatch(input);
  } catch (e) {
    return reportError(e, input.io, input.env.GAXX_DEBUG === '1', json);
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
  const first = leadingGlobals(dash === -1 ? argv : argv.slice(0, dash)).after[0] ?? '';
  if (HELP_WORDS.includes(first)) return programHelp(COMMANDS, version());
  if (VERSION_WORDS.includes(first)) return version();
  return undefined;
}

async function dispatch(input: CliInput): Promise<number> {
  const { io } = input;
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
  const { entry, words } = resolveCommand(pre);
  const args = pre.slice(words);
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
  const parsed = parseCommandLine(entry, command, args);
  if (dash !== -1 && !command.takesRest) throw usage(`'gaxx ${entry.name}' takes no arguments after --`, entry.name);
  // Loaded here, not at the top: its validation (zod) is not needed for --help or --version.
  const { loadConfig } = await import('./config.js');
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
  refuseSharedDirs(config.paths, input.modeOf ?? modeOfPath);
  if (command.handlesInterrupt) input.onInterruptible?.();
  return command.run({
    flags: parsed.values,
    positionals: parsed.positionals,
    rest,
    hasRest: dash !== -1,
    config,
    out: new Output(io, parsed.values.json === true),
    io,
    signal: input.signal,
    commands: COMMANDS,
  });
}

/** Splits global flags (`--home D`, `--redis-url=U`, ...) off the front of the command line. */
function leadingGlobals(args: readonly string[]): { globals: string[]; after: string[] } {
  let i = 0;
  while (i < args.length) {
    const a = args[i] as string;
    const m = /^--([a-z-]+)(=.*)?$/.exec(a);
    if (!m || !((m[1] as string) in CONFIG_FLAGS)) break;
    if (m[2] !== undefined) i += 1;
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

function usage(message: string, command?: string): GaxxError {
  return new GaxxError('USAGE', `${message} (see 'gaxx ${command ? `${command} ` : ''}--help')`);
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
    if (words.length > 1) throw usage(`unknown command 'gaxx ${words.slice(0, 2).join(' ')}'`, first);
    return { entry: undefined, words: 1 };
  }
  const hint = closest(first);
  throw usage(`unknown command '${first}'${hint ? `; did you mean '${hint}'?` : ''}`);
}

function closest(word: string): string | undefined {
  const names = [...new Set(COMMANDS.map((c) => c.name.split(' ')[0] as string))];
  return names.find((n) => n.startsWith(word.slice(0, 2)) && word.length > 1);
}

/** Parses a command's flags and positionals (strictly: an unknown flag is USAGE), as a run of it does. */
export function parseCommandLine(entry: CommandEntry, command: Command, args: string[]): { values: FlagValues; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, f] of Object.entries(CONFIG_FLAGS)) options[name] = { type: f.type };
  for (const [name, f] of Object.entries(command.flags)) {
    options[name] = { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (e) {
    // A value that starts with '-' (`--retries -1`) reads as another flag: node's three lines
    // ask whether the value was forgotten; the CLI says how to give it.
    const dashed = /^Option '(--[\w-]+)' argument is ambiguous/.exec((e as Error).message);
    if (dashed) throw usage(`${dashed[1]} takes a value; write one that starts with '-' as ${dashed[1]}=VALUE`, entry.name);
    // Node's own text ends in an unbalanced quote (as in '-- "--bogus"): the CLI says it plainly.
    const unknown = /^Unknown option '([^']*)'/.exec((e as Error).message);
    if (unknown) {
      const rest = command.takesRest ? `; arguments of the remote command go after '--', as in: -- ${unknown[1]}` : '';
      throw usage(`unknown option '${unknown[1]}'${rest}`, entry.name);
    }
    // Other messages of node's may span lines too: the CLI says one.
    throw usage((e as Error).message.replace(/\s*\n\s*/g, ' '), entry.name);
  }
  const max = command.positionals?.names.length ?? 0;
  const min = command.positionals?.min ?? 0;
  if (parsed.positionals.length > max) throw usage(`unexpected argument '${parsed.positionals[max]}'`, entry.name);
  if (parsed.positionals.length < min) throw usage(`missing ${command.positionals?.names[parsed.positionals.length]}`, entry.name);
  return { values: parsed.values as FlagValues, positionals: parsed.positionals };
}
