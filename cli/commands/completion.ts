/** `gaxx completion bash|zsh|fish`: a shell completion script (and `fleets`, which those scripts call). */
import { readdirSync } from 'node:fs';
import { GaxxError } from '../../proto/index.js';
import { type Command } from '../command.js';
import { bashScript, completionCommand, fishScript, zshScript } from '../completion-scripts.js';
import { CONFIG_FLAGS } from '../config.js';

/** Fleet names in the local state dir (`<state>/fleets/<name>[.json]`), sorted; none when it does not exist. */
export function localFleetNames(fleetsDir: string): string[] {
  try {
    return [
      ...new Set(
        readdirSync(fleetsDir)
          .map((n) => n.replace(/\.json$/, ''))
          .filter((n) => /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(n)),
      ),
    ].sort();
  } catch {
    return [];
  }
}

export const command: Command = {
  usage: 'gaxx completion bash|zsh|fish',
  description: [
    'Prints a completion script for commands, flags and fleet names. Install:',
    '  bash: source <(gaxx completion bash)    (or save it under /etc/bash_completion.d/gaxx)',
    '  zsh:  source <(gaxx completion zsh)',
    '  fish: gaxx completion fish | source     (or save it as ~/.config/fish/completions/gaxx.fish)',
    'Fleet names come from the local state (the fleets this machine created), without network: of the',
    "installation that --home or --state-dir on the line being completed name, else of GAXX_HOME's.",
    'Global flags are understood before the command as after it (gaxx --home D run --fleet <TAB>).',
    '`gaxx completion fleets` prints them, one per line (the scripts call it).',
  ].join('\n'),
  flags: {},
  positionals: { names: ['SHELL'], min: 1, complete: ['bash', 'zsh', 'fish'] },
  // A script needs no configuration: `source <(gaxx completion bash)` in a shell's rc file must not fail on a broken config.json.
  config: 'on-use',
  examples: ['source <(gaxx completion bash)', 'gaxx completion fish > ~/.config/fish/completions/gaxx.fish'],
  async run({ positionals, config, out, commands = [] }) {
    const shell = positionals[0];
    if (shell === 'fleets') {
      // Asked by the scripts while the user types: an installation whose configuration is broken offers no names, and no error in the middle of the line.
      let fleetsDir: string;
      try {
        fleetsDir = config.paths.fleetsDir;
      } catch (e) {
        if (e instanceof GaxxError) return 0;
        throw e;
      }
      for (const n of localFleetNames(fleetsDir)) out.writeOut(`${n}\n`);
      return 0;
    }
    const make = shell === 'bash' ? bashScript : shell === 'zsh' ? zshScript : shell === 'fish' ? fishScript : undefined;
    if (!make) throw new GaxxError('USAGE', `unknown shell '${shell}': give bash, zsh or fish (see 'gaxx completion --help')`);
    const globals = CONFIG_FLAGS;
    const cmds = await Promise.all(commands.map(async (e) => completionCommand(e.name, e.summary, (await e.load()).command, globals)));
    out.writeOut(make(cmds));
    return 0;
  },
};
