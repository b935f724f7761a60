/** Which flags a command takes: a module of its own, types only, for the help the bundle's front prints too. */
import type { Command, FlagSpec } from './command.js';

/**
 * A command's flags as it takes them: its own, and `--fleet F` where its one positional is a
 * fleet (`gaxx status F`, `ls`, `delete`), as run, spawn and certs rotate name theirs, so that a
 * script may pass `--fleet "$F"` to every command. parseCommandLine turns it into the positional.
 */
export function commandFlags(command: Pick<Command, 'flags' | 'positionals'>): Record<string, FlagSpec> {
  const p = command.positionals;
  const fleetAlias = p?.names.length === 1 && p.names[0] === 'F' && p.complete === 'fleet' && command.flags.fleet === undefined;
  return fleetAlias ? { ...command.flags, fleet: { type: 'string', valueName: 'F', help: 'the fleet, as F (give one or the other)' } } : command.flags;
}
