/**
 * A command's words after its name: flags and positionals parsed strictly, each mistake reported
 * as one USAGE line that says what to write instead (the closest flag or subcommand, where the
 * remote command goes, a value flag given twice). dispatch.ts runs it before the command is run.
 */
import { parseArgs } from 'node:util';
import { GaxxError } from '../proto/index.js';
import type { Command, FlagValues } from './command.js';
import { commandFlags } from './command-flags.js';
import { COMMANDS, type CommandEntry } from './commands.js';
import { CONFIG_FLAGS } from './settings.js';
import { didYouMean } from './suggest.js';

/** A USAGE error that points at the help of `command` (the program's help without one). */
export function usage(message: string, command?: string): GaxxError {
  return new GaxxError('USAGE', `${message} (see 'gaxx ${command ? `${command} ` : ''}--help')`);
}

/** The subcommand words of group `group` (`certs` -> issue, list, ...). */
function subcommandsOf(group: string): string[] {
  return COMMANDS.filter((c) => c.name.startsWith(`${group} `)).map((c) => c.name.slice(group.length + 1));
}

/** USAGE for `gaxx GROUP WORD` where WORD is none of the group's subcommands, with the closest one. */
export function unknownSubcommand(group: string, word: string): GaxxError {
  const subs = subcommandsOf(group);
  const hint = didYouMean(word, subs, (s) => `gaxx ${group} ${s}`) || ` (subcommands: ${subs.join(', ')})`;
  return usage(`unknown subcommand '${word}' of 'gaxx ${group}'${hint}`, group);
}

type Options = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

/** Node's parseArgs message for `args`, as the CLI says it: one line, lower case, with the fix. */
function parseFailure(e: Error, entry: CommandEntry, command: Command, options: Options): GaxxError {
  const m = e.message;
  // A value that starts with '-' (`--retries -1`) reads as another flag: node's three lines
  // ask whether the value was forgotten; the CLI says how to give it.
  const dashed = /^Option '(--[\w-]+)' argument is ambiguous/.exec(m);
  if (dashed) return usage(`${dashed[1]} takes a value; write one that starts with '-' as ${dashed[1]}=VALUE`, entry.name);
  // Node's own text ends in an unbalanced quote (as in '-- "--bogus"): the CLI says it plainly.
  const unknown = /^Unknown option '([^']*)'/.exec(m);
  if (unknown) {
    const word = unknown[1] as string;
    const hint = word.startsWith('--') ? didYouMean(word.slice(2), [...Object.keys(options), 'help'], (s) => `--${s}`) : '';
    const rest = !hint && command.takesRest ? `; arguments of the remote command go after '--', as in: -- ${word}` : '';
    return usage(`unknown option '${word}'${hint}${rest}`, entry.name);
  }
  const noValue = /^Option '(?:-\w, )?(--[\w-]+)' does not take an argument/.exec(m);
  if (noValue) return usage(`${noValue[1]} takes no value: give it alone, as ${noValue[1]}`, entry.name);
  const missing = /^Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(m);
  if (missing) return usage(`${missing[1]} needs a value`, entry.name);
  // Other messages of node's may span lines too: the CLI says one.
  return usage(
    m.replace(/\s*\n\s*/g, ' ').replace(/^[A-Z](?![A-Z])/, (c) => c.toLowerCase()),
    entry.name,
  );
}

/**
 * USAGE naming the first flag of `tokens` given more than once that takes only one value. An
 * on/off flag given twice (`--json --json`, as a wrapper or alias may add it) means the same as once.
 */
function refuseRepeats(tokens: readonly { kind: string; name?: string }[], options: Options, entry: CommandEntry): void {
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind !== 'option' || t.name === undefined || options[t.name]?.multiple || options[t.name]?.type !== 'string') continue;
    if (seen.has(t.name)) {
      const short = options[t.name]?.short;
      const forms = short ? `--${t.name} (-${short})` : `--${t.name}`;
      throw usage(`${forms} is given more than once; it takes one value`, entry.name);
    }
    seen.add(t.name);
  }
}

/**
 * The replacement character, which is what Node makes of each byte of a command-line word that is
 * not UTF-8: process.argv is decoded lossily, so `rm $'name\xff'` would reach a task as another name.
 */
const REPLACEMENT = '\uFFFD';
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** `bytes` as text, each byte that is not part of a UTF-8 character written `\xNN`. */
function shownBytes(bytes: Buffer): string {
  let shown = '';
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i] as number;
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    let char: string | undefined;
    try {
      if (len > 0) char = strictUtf8.decode(bytes.subarray(i, i + len));
    } catch {
      char = undefined;
    }
    if (char === undefined) {
      shown += `\\x${b.toString(16).padStart(2, '0')}`;
      i += 1;
    } else {
      shown += char;
      i += len;
    }
  }
  return shown;
}

/**
 * USAGE when a word of the command line was not UTF-8 (as `--env K=$'\xff'`, `-- rm $'a\xff'`):
 * gaxx could only pass it on changed, and every argument that reaches an agent, a task or a file
 * name travels as UTF-8 text. `bytesOf` gives the words' bytes as the program got them (main.ts
 * reads /proc/self/cmdline); it is asked only when a word holds U+FFFD, which a word that was not
 * UTF-8 does, and a U+FFFD typed as such (its own three bytes) passes. Without the bytes, a word
 * holding U+FFFD is refused: what it was cannot be told.
 */
export function refuseNonUtf8Words(argv: readonly string[], bytesOf: (() => readonly Buffer[] | undefined) | undefined): void {
  if (!argv.some((w) => w.includes(REPLACEMENT))) return;
  const raw = bytesOf?.();
  const dash = argv.indexOf('--');
  argv.forEach((word, i) => {
    if (!word.includes(REPLACEMENT)) return;
    const bytes = raw?.[i];
    if (bytes !== undefined && Buffer.from(word).equals(bytes)) return;
    const shown = `'${bytes ? shownBytes(bytes) : word}'`;
    const prev = argv[i - 1];
    const which =
      dash !== -1 && i > dash
        ? `argument ${i - dash} of the command after -- (${shown})`
        : `the argument ${shown}${prev?.startsWith('-') && prev !== '--' ? ` (after ${prev})` : ''}`;
    const why =
      dash !== -1 && i > dash
        ? 'arguments travel as UTF-8 text: its exact bytes could not reach the task'
        : 'gaxx takes its arguments as UTF-8 text: its exact bytes could not reach an agent or name a file';
    if (bytes === undefined)
      throw new GaxxError(
        'USAGE',
        `${which} holds U+FFFD, which a word that is not UTF-8 becomes, and its bytes cannot be read to tell (${why}); write it in UTF-8`,
      );
    throw new GaxxError('USAGE', `${which} is not valid UTF-8 (${why})`);
  });
}

/** USAGE for a positional the command does not take, with what was probably meant. */
function unexpected(word: string, first: boolean, entry: CommandEntry, command: Command): GaxxError {
  // `gaxx runs sho X`: `runs` is a command and a group; its first word was meant as a subcommand.
  if (first && subcommandsOf(entry.name).length > 0) return unknownSubcommand(entry.name, word);
  const rest = command.takesRest ? `; the command to run goes after '--' (... -- ${word} ...)` : '';
  return usage(`unexpected argument '${word}'${rest}`, entry.name);
}

/**
 * Parses a command's flags and positionals (strictly: an unknown flag is USAGE), as a run of it
 * does. A value flag that is not repeatable given twice is USAGE too: the last one would win unseen.
 * `globals` are the global flags given before the command name (`gaxx --home D status`).
 */
export function parseCommandLine(
  entry: CommandEntry,
  command: Command,
  args: string[],
  globals: readonly string[] = [],
): { values: FlagValues; positionals: string[] } {
  const options: Options = {};
  for (const [name, f] of Object.entries(CONFIG_FLAGS)) options[name] = { type: f.type };
  const flags = commandFlags(command);
  for (const [name, f] of Object.entries(flags)) {
    options[name] = { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
  }
  // `--fleet F` for the positional F (commandFlags).
  const fleetFlag = command.flags.fleet === undefined && flags.fleet !== undefined;
  let parsed;
  try {
    parsed = parseArgs({ args: [...globals, ...args], options, strict: true, allowPositionals: true, tokens: true });
  } catch (e) {
    throw parseFailure(e as Error, entry, command, options);
  }
  refuseRepeats(parsed.tokens, options, entry);
  if (fleetFlag && parsed.values.fleet !== undefined) {
    const fleet = parsed.values.fleet as string;
    delete parsed.values.fleet;
    if (parsed.positionals.length > 0)
      throw usage(`the fleet given twice ('${parsed.positionals[0] as string}' and --fleet '${fleet}'): give it once`, entry.name);
    parsed.positionals.push(fleet);
  }
  const max = command.positionals?.names.length ?? 0;
  const min = command.positionals?.min ?? 0;
  if (parsed.positionals.length > max) {
    const word = parsed.positionals[max] as string;
    throw unexpected(word, max === 0 && args[0] === word, entry, command);
  }
  if (parsed.positionals.length < min) throw usage(`missing ${command.positionals?.names[parsed.positionals.length]}`, entry.name);
  return { values: parsed.values as FlagValues, positionals: parsed.positionals };
}
