/**
 * The contract between cli/main.ts and a command module (cli/commands/<name>.ts): each module
 * exports `command: Command`, which main.ts loads lazily when that command is invoked.
 */
import {
  checkDuration,
  formatSize,
  GaxxError,
  MAX_DURATION_MS,
  parseSize,
  refuseLoaderEnv,
  requestProblems,
  SIZE_HINT,
  workDirProblems,
} from '../proto/index.js';
import type { CommandEntry } from './commands.js';
import type { GaxxConfig } from './config.js';
import type { Io, Output } from './output.js';

/** One flag of a command, with what `--help` prints about it. */
export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Placeholder shown in help, e.g. DIR. */
  valueName?: string;
  /** The only values the flag takes, when they are a fixed set (shell completion offers them). */
  values?: readonly string[];
  help: string;
}

/** What a positional argument is, for shell completion: a fleet name, F:PATH or a local path, or one of a fixed set. */
export type PositionalKind = 'fleet' | 'fleet-path' | readonly string[];

/** Parsed flag values (as node:util parseArgs returns them). */
export type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** What a command's run() receives. */
export interface CommandContext {
  flags: FlagValues;
  /** Positional arguments before `--`. */
  positionals: string[];
  /** Everything after `--`: an argv, never a shell string. Empty when there was no `--`. */
  rest: string[];
  /** True when the command line had a `--`. */
  hasRest: boolean;
  config: GaxxConfig;
  out: Output;
  io: Io;
  /** Aborted on the first Ctrl-C, SIGTERM, SIGHUP or closed stdout (main.ts); commands that can cancel remote work listen to it. */
  signal: AbortSignal;
  /** The command table (for commands that describe the others, e.g. completion). */
  commands?: readonly CommandEntry[];
}

/** A command module's export. */
export interface Command {
  /**
   * e.g. 'gaxx certs issue --role R --name N [--out DIR]'; one form a line when there are several.
   * It names every flag of `flags`, with the same value names (a unit test checks it).
   */
  usage: string;
  /** A paragraph describing what the command does. */
  description: string;
  flags: Record<string, FlagSpec>;
  /** Positional arguments accepted before `--` (names for help; count is enforced). */
  positionals?: { names: string[]; min: number; complete?: PositionalKind };
  /**
   * When the configuration is loaded (default 'before': before run(), so that a broken
   * config.json fails the command at once). 'on-use': when run() first reads ctx.config, for a
   * command that needs none for some of what it does (a completion script works whatever the
   * config file holds); reading ctx.config then throws what loading it found wrong.
   */
  config?: 'before' | 'on-use';
  /** Whether the command takes an argv after `--`. */
  takesRest?: boolean;
  /** Whether run() cancels its work when ctx.signal aborts (main.ts then defers Ctrl-C to it). */
  handlesInterrupt?: boolean;
  /** What the first Ctrl-C does, as main.ts says it on stderr (default 'cancelling'). */
  interruptNote?: string;
  /**
   * The command says itself what the first stop did, once it knows (a run: whether any task was
   * left to cancel), with stopNote; main.ts then only passes the stop as ctx.signal's reason.
   */
  saysStop?: boolean;
  examples: string[];
  /** Runs the command; resolves to the process exit code. Throws GaxxError for expected failures. */
  run(ctx: CommandContext): Promise<number>;
}

/** Why a command was asked to stop (ctx.signal's reason, main.ts): its words, and the exit code it ends with. */
export interface StopReason {
  why: string;
  code: number;
}

/**
 * For a command that says what its first stop did (Command.saysStop): says it once (stopNote on
 * stderr), and only once `signal` has aborted; later calls say nothing.
 */
export function stopSayer(out: Pick<Output, 'note'>, signal: AbortSignal): (did: string) => void {
  let said = false;
  return (did) => {
    if (said || !signal.aborted) return;
    said = true;
    out.note(stopNote(signal.reason, did));
  };
}

/** The note on a first stop: what it did (`did`, e.g. 'cancelling'), and how to quit at once. */
export function stopNote(reason: unknown, did: string): string {
  const r = reason as Partial<StopReason> | undefined;
  if (typeof r?.why !== 'string' || typeof r.code !== 'number') return `gaxx: ${did}`;
  return r.code === 130 ? `gaxx: ${did} (press Ctrl-C again to quit)` : `gaxx: ${r.why}: ${did} (once more, or Ctrl-C, quits at once)`;
}

/** The value of a string flag. */
export function stringFlag(flags: FlagValues, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

/** The values of a repeatable string flag. */
export function stringsFlag(flags: FlagValues, name: string): string[] {
  const v = flags[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
}

/** The value of a boolean flag. */
export function boolFlag(flags: FlagValues, name: string): boolean {
  return flags[name] === true;
}

/** A USAGE error that points at the command's help. */
export function usageError(command: string, message: string): GaxxError {
  return new GaxxError('USAGE', `${message} (see 'gaxx ${command} --help')`);
}

/** A whole-number flag from `min` to `max` (digits only: no sign, point or exponent). */
export function intFlag(flags: FlagValues, name: string, command: string, min: number, max: number): number | undefined {
  const raw = stringFlag(flags, name);
  if (raw === undefined) return undefined;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) throw usageError(command, `--${name} '${raw}' must be a whole number from ${min} to ${max}`);
  return n;
}

/**
 * A duration flag in milliseconds (`30s`, `500ms`, `10m`, `1h`; a bare number is refused, as
 * everywhere in gaxx); from `minMs` to `maxMs` (default MAX_DURATION_MS: a longer timer would
 * fire at once).
 */
export function durationFlag(flags: FlagValues, name: string, command: string, minMs = 1, maxMs = MAX_DURATION_MS): number | undefined {
  const raw = stringFlag(flags, name);
  if (raw === undefined) return undefined;
  const d = checkDuration(raw, { minMs, maxMs });
  if ('problem' in d) throw usageError(command, `--${name} '${raw}' ${d.problem}`);
  return d.ms;
}

/** A size flag in bytes (65536, 64k, 16M), from `min` to `max`. */
export function sizeFlag(flags: FlagValues, name: string, command: string, min: number, max: number): number | undefined {
  const raw = stringFlag(flags, name);
  if (raw === undefined) return undefined;
  const n = parseSize(raw);
  if (n === undefined) throw usageError(command, `--${name} '${raw}' must be ${SIZE_HINT}`);
  if (n < min || n > max) throw usageError(command, `--${name} '${raw}' must be from ${formatSize(min)} to ${formatSize(max)} bytes`);
  return n;
}

/**
 * The repeatable `--env NAME=VALUE` flag as a map, each name once. A name that changes how programs load
 * (LD_PRELOAD, NODE_OPTIONS...) is ENV_REFUSED here, as every agent would refuse it: before
 * anything is sent or queued, not as one refusal per task.
 */
export function envFlag(flags: FlagValues, command: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of stringsFlag(flags, 'env')) {
    const i = kv.indexOf('=');
    if (i <= 0) throw usageError(command, `--env '${kv}' must be NAME=VALUE`);
    const name = kv.slice(0, i);
    // As a flag given twice is refused: the last value would win unseen.
    if (Object.hasOwn(env, name))
      throw usageError(command, `--env ${name} is given more than once ('${env[name] as string}' and '${kv.slice(i + 1)}'): give it once`);
    env[name] = kv.slice(i + 1);
  }
  refuseLoaderEnv(env);
  const problems = requestProblems({ env });
  if (problems.length > 0) throw usageError(command, `--env: ${problems.join('; ')}`);
  return env;
}

/**
 * The command after `--` of `run` and `exec`, checked as an agent checks it, before anything is
 * sent or queued: USAGE when none was given, when its program is the empty word (`-- ''`), or
 * when it is over the request limits. `example` shows where the command goes.
 */
export function restCommand(rest: readonly string[], command: string, example: string): string[] {
  if (rest.length === 0) throw usageError(command, `give the command after --, e.g. ${example}`);
  if (rest[0] === '') throw usageError(command, "the command is empty ('' as the program): name the program to run first after --");
  const problems = requestProblems({ argv: rest });
  if (problems.length > 0) throw usageError(command, `the command is too large for an agent: ${problems.join('; ')}`);
  return [...rest];
}

/** `--workdir DIR` of `run` and `exec`: checked as the agent would, USAGE naming the flag. */
export function workDirFlag(flags: FlagValues, command: string): string | undefined {
  const dir = stringFlag(flags, 'workdir');
  if (dir === undefined) return undefined;
  if (dir === '') throw usageError(command, "--workdir needs a directory under the agent's data dir, e.g. --workdir out");
  const problems = workDirProblems(dir);
  if (problems.length > 0) throw usageError(command, `--workdir: ${problems.join('; ')}`);
  return dir;
}

/** `--workdir` of `run` and `exec`. */
export const WORKDIR_FLAG: FlagSpec = {
  type: 'string',
  valueName: 'DIR',
  help: "run in DIR under the agent's data dir, made if missing and kept after the task, shared by every task that names it, the only part of the data dir the task sees (default: a fresh scratch dir of its own, removed later); `gaxx cp F:DIR/FILE` fetches what it wrote",
};

/** The common `--json` flag. */
export const JSON_FLAG: FlagSpec = { type: 'boolean', help: 'print the result as one JSON document on stdout' };
