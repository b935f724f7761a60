/**
 * Shell completion scripts generated from the command table, so they never drift from the
 * commands and flags that exist. Fleet names are completed by calling `gaxx completion fleets`
 * (names from the local state dir; no network, no Redis), after --fleet, as `gaxx status F` and
 * as the `F:` of `gaxx cp`; a flag or positional with a fixed set of values offers that set.
 */
import type { Command, PositionalKind } from './command.js';

/** One command as completion needs it. */
export interface CompletionCommand {
  name: string;
  summary: string;
  flags: string[];
  /** Flags whose value is a fleet name. */
  fleetFlags: string[];
  /** Flags (the command's and the global ones) whose value is one of a fixed set, with that set. */
  flagValues: Record<string, readonly string[]>;
  /** What its positional arguments are (absent: local paths). */
  positional: PositionalKind | undefined;
}

/** The completion view of a loaded command; `globals`: the global flags (their names, or their specs with any fixed values). */
export function completionCommand(
  name: string,
  summary: string,
  c: Command,
  globals: readonly string[] | Record<string, { values?: readonly string[] }>,
): CompletionCommand {
  const globalSpecs: Record<string, { values?: readonly string[] }> = Array.isArray(globals)
    ? Object.fromEntries(globals.map((g) => [g, {}]))
    : (globals as Record<string, { values?: readonly string[] }>);
  const flags = [
    ...Object.entries(c.flags).flatMap(([n, f]) => [`--${n}`, ...(f.short ? [`-${f.short}`] : [])]),
    ...Object.keys(globalSpecs).map((g) => `--${g}`),
    '--help',
  ];
  const flagValues: Record<string, readonly string[]> = {};
  for (const [n, f] of [...Object.entries(globalSpecs), ...Object.entries(c.flags)]) if (f.values?.length) flagValues[`--${n}`] = f.values;
  return { name, summary, flags, fleetFlags: 'fleet' in c.flags ? ['--fleet'] : [], flagValues, positional: c.positionals?.complete };
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The bash word for a positional kind: fleet, path (F:PATH or a local one), the fixed values, or '' (local paths). */
function bashPositional(kind: PositionalKind | undefined): string {
  if (kind === undefined) return "''";
  if (kind === 'fleet') return 'fleet';
  if (kind === 'fleet-path') return 'path';
  return q(kind.join(' '));
}

/** A case on the word before the cursor: after a flag with fixed values, those values. */
function bashValueCase(values: Record<string, readonly string[]>): string {
  const arms = Object.entries(values).map(([f, v]) => `${q(f)}) COMPREPLY=( $(compgen -W ${q(v.join(' '))} -- "$cur") ); return ;;`);
  return arms.length ? `\n      case "$prev" in ${arms.join(' ')} esac` : '';
}

/** Bash: `source <(gaxx completion bash)`. */
export function bashScript(cmds: readonly CompletionCommand[]): string {
  const top = [...new Set(cmds.map((c) => c.name.split(' ')[0] as string))];
  const groups = [...new Set(cmds.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0] as string))];
  const cases = cmds
    .map((c) => `    ${q(c.name)}) flags=${q(c.flags.join(' '))}; poskind=${bashPositional(c.positional)}${bashValueCase(c.flagValues)} ;;`)
    .join('\n');
  const subs = groups
    .map(
      (g) =>
        `    ${g}) subs=${q(
          cmds
            .filter((c) => c.name.startsWith(`${g} `))
            .map((c) => c.name.split(' ')[1])
            .join(' '),
        )} ;;`,
    )
    .join('\n');
  return `# gaxx completion for bash: source <(gaxx completion bash)
_gaxx() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" i w cmd="" pos=0 subs="" flags="" poskind="" f fl=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if [[ "$w" == "--" ]]; then COMPREPLY=( $(compgen -f -- "$cur") ); return; fi
  done
  if ((COMP_CWORD == 1)); then COMPREPLY=( $(compgen -W ${q(top.join(' '))} -- "$cur") ); return; fi
  cmd="\${COMP_WORDS[1]}"
  case "$cmd" in
${subs}
  esac
  pos=2
  if [[ -n "$subs" ]]; then
    if ((COMP_CWORD == 2)) && [[ "$cur" != -* ]]; then COMPREPLY=( $(compgen -W "$subs" -- "$cur") ); return; fi
    if [[ " $subs " == *" \${COMP_WORDS[2]} "* ]]; then cmd="$cmd \${COMP_WORDS[2]}"; pos=3; fi
  fi
  case "$cmd" in
${cases}
  esac
  if [[ "$prev" == "--fleet" ]]; then COMPREPLY=( $(compgen -W "$(gaxx completion fleets 2>/dev/null)" -- "$cur") ); return; fi
  if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "$flags" -- "$cur") ); return; fi
  if [[ "$poskind" == fleet ]] && ((COMP_CWORD == pos)); then COMPREPLY=( $(compgen -W "$(gaxx completion fleets 2>/dev/null)" -- "$cur") ); return; fi
  if [[ "$poskind" == path ]]; then
    # SRC and DST: a fleet's F: (no space after it, the remote path follows) or a local path.
    for f in $(gaxx completion fleets 2>/dev/null); do fl+="$f: "; done
    COMPREPLY=( $(compgen -W "$fl" -- "$cur") $(compgen -f -- "$cur") )
    if ((\${#COMPREPLY[@]} == 1)) && [[ "\${COMPREPLY[0]}" == *: ]]; then compopt -o nospace 2>/dev/null; fi
    return
  fi
  if [[ -n "$poskind" ]] && ((COMP_CWORD == pos)); then COMPREPLY=( $(compgen -W "$poskind" -- "$cur") ); return; fi
  COMPREPLY=( $(compgen -f -- "$cur") )
}
complete -F _gaxx gaxx
`;
}

/** Zsh: the bash function through zsh's bashcompinit (`source <(gaxx completion zsh)`). */
export function zshScript(cmds: readonly CompletionCommand[]): string {
  return `# gaxx completion for zsh: source <(gaxx completion zsh)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashScript(cmds).split('\n').slice(1).join('\n')}`;
}

/** Fish: `gaxx completion fish | source`. */
export function fishScript(cmds: readonly CompletionCommand[]): string {
  const lines = ['# gaxx completion for fish: gaxx completion fish | source', 'complete -c gaxx -f'];
  const tops = new Map<string, string>();
  for (const c of cmds)
    if (!tops.has(c.name.split(' ')[0] as string))
      tops.set(c.name.split(' ')[0] as string, c.name.includes(' ') ? `${c.name.split(' ')[0]} commands` : c.summary);
  for (const [t, d] of tops) lines.push(`complete -c gaxx -n __fish_use_subcommand -a ${q(t)} -d ${q(d.slice(0, 60))}`);
  for (const c of cmds) {
    const [g, sub] = c.name.split(' ') as [string, string | undefined];
    const cond = sub ? `__fish_seen_subcommand_from ${g}; and __fish_seen_subcommand_from ${sub}` : `__fish_seen_subcommand_from ${g}`;
    if (sub)
      lines.push(
        `complete -c gaxx -n ${q(
          `__fish_seen_subcommand_from ${g}; and not __fish_seen_subcommand_from ${cmds
            .filter((x) => x.name.startsWith(`${g} `))
            .map((x) => x.name.split(' ')[1])
            .join(' ')}`,
        )} -a ${q(sub)} -d ${q(c.summary.slice(0, 60))}`,
      );
    for (const f of c.flags) {
      const opt = f.startsWith('--') ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`;
      const values = c.flagValues[f];
      const arg = c.fleetFlags.includes(f) ? " -x -a '(gaxx completion fleets 2>/dev/null)'" : values ? ` -x -a ${q(values.join(' '))}` : '';
      lines.push(`complete -c gaxx -n ${q(cond)} ${opt}${arg}`);
    }
    const pos = c.positional;
    if (pos === 'fleet') lines.push(`complete -c gaxx -n ${q(cond)} -a '(gaxx completion fleets 2>/dev/null)'`);
    else if (pos === 'fleet-path') lines.push(`complete -c gaxx -n ${q(cond)} -F -a '(gaxx completion fleets 2>/dev/null)":"'`);
    else if (pos) lines.push(`complete -c gaxx -n ${q(cond)} -a ${q(pos.join(' '))}`);
  }
  return `${lines.join('\n')}\n`;
}
