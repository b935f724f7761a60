/** `--help` texts for the program, a command group and a command. */
import { ERROR_CODES, formatDuration, MAX_DURATION_MS } from '../proto/index.js';
import type { Command, FlagSpec } from './command.js';
import { commandFlags } from './command-flags.js';
import type { CommandEntry } from './commands.js';
import { CONFIG_FLAGS, SETTINGS } from './settings.js';

/** What every duration (D) takes: said once in each help that has one. */
const DURATIONS = `Durations (D): digits with a unit (500ms, 30s, 10m, 1h); at most ${formatDuration(MAX_DURATION_MS)} unless a flag says less.`;

function flagLines(flags: Record<string, FlagSpec | { valueName: string; help: string; type: 'string' }>): string[] {
  const rows = Object.entries(flags).map(([name, f]) => {
    const short = 'short' in f && f.short ? `-${f.short}, ` : '    ';
    const value = f.type === 'string' ? ` ${f.valueName ?? 'VALUE'}` : '';
    const many = 'multiple' in f && f.multiple ? ' (repeatable)' : '';
    return [`${short}--${name}${value}`, `${f.help}${many}`] as const;
  });
  const width = Math.max(0, ...rows.map((r) => r[0].length));
  return rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`);
}

/** The program's help: commands, global flags, environment and exit codes. */
export function programHelp(commands: readonly CommandEntry[], version: string): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const exits = new Map<number, string[]>();
  for (const [code, v] of Object.entries(ERROR_CODES)) exits.set(v.exit, [...(exits.get(v.exit) ?? []), code]);
  const envWidth = Math.max(...SETTINGS.map((s) => s.env.length));
  return [
    `gaxx ${version}: run commands on short-lived fleets of machines`,
    '',
    'Usage: gaxx <command> [flags] [-- CMD ARGS...]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Global flags (every command takes them, before or after its name; each acts where the command does what it sets):',
    ...flagLines({
      ...CONFIG_FLAGS,
      help: { type: 'boolean', short: 'h', help: 'show help (also after a command)' },
      version: { type: 'boolean', short: 'V', help: 'print the version' },
    }),
    '',
    'Files: GAXX_HOME=<dir> keeps everything under <dir>/config and <dir>/state; otherwise',
    '$XDG_CONFIG_HOME/gaxx (~/.config/gaxx) and $XDG_STATE_HOME/gaxx (~/.local/state/gaxx).',
    DURATIONS,
    'Settings: defaults < <config>/config.json < environment < flags. Environment:',
    ...SETTINGS.map((s) => `  ${s.env.padEnd(envWidth)}  ${s.path}: ${s.help}`),
    '',
    "Exit codes: 0 success; a remote command's own code for exec; 3 (FILE_ACCESS) when stdout or",
    "stderr cannot be written (a full disk, /dev/full), 141 when stdout's reader went away; otherwise",
    ...[...exits.entries()].sort((a, b) => a[0] - b[0]).map(([n, codes]) => `  ${String(n).padStart(3)}  ${codes.join(', ')}`),
    '',
    "Run 'gaxx <command> --help' for a command's flags and examples.",
  ].join('\n');
}

/** Help for a group such as `certs`: its subcommands. */
export function groupHelp(group: string, commands: readonly CommandEntry[]): string {
  const subs = commands.filter((c) => c.name.startsWith(`${group} `));
  const width = Math.max(...subs.map((c) => c.name.length));
  return [
    `Usage: gaxx ${group} <subcommand> [flags]`,
    '',
    'Subcommands:',
    ...subs.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    `Run 'gaxx ${group} <subcommand> --help' for details.`,
  ].join('\n');
}

/** A command's help: usage, description, flags, examples. */
export function commandHelp(cmd: Command): string {
  return [
    // A usage of several forms (`gaxx run ...`, `gaxx run --resume ID ...`): one per line, aligned.
    ...cmd.usage.split('\n').map((form, i) => `${i === 0 ? 'Usage: ' : '       '}${form}`),
    '',
    cmd.description,
    '',
    'Flags:',
    ...flagLines({ ...commandFlags(cmd), help: { type: 'boolean', short: 'h', help: 'show this help' } }),
    ...(Object.values(cmd.flags).some((f) => f.valueName === 'D') ? [DURATIONS] : []),
    '',
    "Global flags (--home, ...): see 'gaxx --help'.",
    '',
    'Examples:',
    ...cmd.examples.map((e) => `  ${e}`),
  ].join('\n');
}
