/**
 * Shell completion scripts generated from the command table, so they never drift from the
 * commands and flags that exist. Fleet names are completed by calling `gaxx completion fleets`
 * (names from the local state dir; no network, no Redis), after --fleet, as `gaxx status F` and
 * as the `F:` of `gaxx cp`; a flag or positional with a fixed set of values offers that set.
 */
import type { Command, PositionalKind } from './command.js';
import { commandFlags } from './command-flags.js';
import { CONFIG_FLAGS } from './settings.js';

/** One command as completion needs it. */
export interface CompletionCommand {
  name: string;
  summary: string;
  flags: string[];
  /** Flags (the command's and the global ones) that take a value: the word after one is not a positional. */
  valueFlags: string[];
  /** Flags whose value is a fleet name. */
  fleetFlags: string[];
  /** Flags (the command's and the global ones) whose value is one of a fixed set, with that set. */
  flagValues: Record<string, readonly string[]>;
  /** What its positional arguments are (absent: local paths). */
  positional: PositionalKind | undefined;
}

/** A global flag as completion needs it: whether it takes a value, and its fixed values if any. */
type GlobalSpec = { type?: 'string' | 'boolean'; values?: readonly string[] };

/**
 * The global flags that say where the installation is: typed anywhere on the line, they are
 * passed on to `gaxx completion fleets`, so the fleet names offered are that installation's.
 */
const LOCATION_FLAGS = ['--home', '--state-dir'] as const;

/** The completion view of a loaded command; `globals`: the global flags (their names, or their specs with any fixed values). */
export function completionCommand(name: string, summary: string, c: Command, globals: readonly string[] | Record<string, GlobalSpec>): CompletionCommand {
  const globalSpecs = globalSpecsOf(globals);
  const own = commandFlags(c);
  const flags = [
    ...Object.entries(own).flatMap(([n, f]) => [`--${n}`, ...(f.short ? [`-${f.short}`] : [])]),
    ...Object.keys(globalSpecs).map((g) => `--${g}`),
    '--help',
  ];
  const valueFlags = [
    ...Object.entries(own)
      .filter(([, f]) => f.type === 'string')
      .flatMap(([n, f]) => [`--${n}`, ...(f.short ? [`-${f.short}`] : [])]),
    ...Object.entries(globalSpecs)
      .filter(([, g]) => g.type !== 'boolean')
      .map(([g]) => `--${g}`),
  ];
  const flagValues: Record<string, readonly string[]> = {};
  for (const [n, f] of [...Object.entries(globalSpecs), ...Object.entries(own)]) if (f.values?.length) flagValues[`--${n}`] = f.values;
  return { name, summary, flags, valueFlags, fleetFlags: 'fleet' in c.flags ? ['--fleet'] : [], flagValues, positional: c.positionals?.complete };
}

function globalSpecsOf(globals: readonly string[] | Record<string, GlobalSpec>): Record<string, GlobalSpec> {
  return Array.isArray(globals) ? Object.fromEntries(globals.map((g) => [g, {}])) : (globals as Record<string, GlobalSpec>);
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

/** The global flags split as the scripts need them: those that take a value, the others, and the fixed values. */
function globalWords(globals: Record<string, GlobalSpec>): { value: string[]; bool: string[]; values: Record<string, readonly string[]> } {
  const names = Object.keys(globals).map((g) => `--${g}`);
  return {
    value: names.filter((n) => globals[n.slice(2)]?.type !== 'boolean'),
    bool: names.filter((n) => globals[n.slice(2)]?.type === 'boolean'),
    values: Object.fromEntries(Object.entries(globals).flatMap(([g, s]) => (s.values?.length ? [[`--${g}`, s.values]] : []))),
  };
}

/**
 * Bash: `source <(gaxx completion bash)`. Global flags may come before the command (as
 * dispatch.ts takes them): the command is the first word after them, and a positional is
 * counted among the words that are neither flags nor flag values, not by its index on the line.
 */
export function bashScript(cmds: readonly CompletionCommand[], globals: Record<string, GlobalSpec> = CONFIG_FLAGS): string {
  const top = [...new Set(cmds.map((c) => c.name.split(' ')[0] as string))];
  const groups = [...new Set(cmds.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0] as string))];
  const g = globalWords(globals);
  const cases = cmds
    .map(
      (c) =>
        `    ${q(c.name)}) flags=${q(c.flags.join(' '))}; vflags=${q(c.valueFlags.join(' '))}; poskind=${bashPositional(c.positional)}${bashValueCase(c.flagValues)} ;;`,
    )
    .join('\n');
  const subs = groups
    .map(
      (grp) =>
        `    ${grp}) subs=${q(
          cmds
            .filter((c) => c.name.startsWith(`${grp} `))
            .map((c) => c.name.split(' ')[1])
            .join(' '),
        )} ;;`,
    )
    .join('\n');
  const globalValueArms = [
    ...Object.entries(g.values).map(([f, v]) => `${q(f)}) COMPREPLY=( $(compgen -W ${q(v.join(' '))} -- "$cur") ) ;;`),
    `${LOCATION_FLAGS.join('|')}) _gaxx_paths -d ;;`,
  ].join(' ');
  const withEq = (names: readonly string[]) => names.map((n) => `${n}=*`).join('|');
  return `# gaxx completion for bash: source <(gaxx completion bash)
# Fleet names of the installation the line names (--home, --state-dir), else of GAXX_HOME's.
_gaxx_fleets() {
  gaxx "\${_gaxx_loc[@]}" completion fleets 2>/dev/null
}
# Local paths (compgen -f, or -d: directories) for the word being completed, added to COMPREPLY one
# a candidate, spaces and all (never split into words or globbed). The word is taken as typed
# (\\-escapes and an opening quote removed); readline quotes what it inserts (-o filenames) when
# paths are all that is offered, else (a fleet's F: too) they are quoted here.
_gaxx_paths() {
  local word="$cur" plain="" p others=\${#COMPREPLY[@]}
  if [[ "$word" == \\'* ]]; then plain="\${word:1}"
  else
    [[ "$word" == \\"* ]] && word="\${word:1}"
    while [[ -n "$word" ]]; do
      if [[ "\${word:0:1}" == \\\\ ]]; then plain+="\${word:1:1}"; word="\${word:2}"; else plain+="\${word:0:1}"; word="\${word:1}"; fi
    done
  fi
  while IFS= read -r p; do
    if ((others == 0)); then COMPREPLY+=("$p"); else COMPREPLY+=("$(printf '%q' "$p")"); fi
  done < <(compgen "$1" -- "$plain")
  ((others == 0)) && compopt -o filenames 2>/dev/null
  return 0
}
_gaxx() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" i w v ci cmd="" pos n=0 subs="" flags="" vflags="" poskind="" f fl=""
  local -a _gaxx_loc=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if [[ "$w" == "--" ]]; then _gaxx_paths -f; return; fi
    # --home D, --home=D (bash splits it at '=' unless COMP_WORDBREAKS lacks it): D once typed, ~ expanded.
    case "$w" in
      ${LOCATION_FLAGS.join('|')})
        v=$((i + 1)); [[ "\${COMP_WORDS[v]}" == "=" ]] && v=$((v + 1))
        if ((v < COMP_CWORD)); then v="\${COMP_WORDS[v]}"; else continue; fi ;;
      ${withEq(LOCATION_FLAGS)}) v="\${w#*=}"; w="\${w%%=*}" ;;
      *) continue ;;
    esac
    [[ "$v" == "~" || "$v" == "~/"* ]] && v="$HOME\${v:1}"
    _gaxx_loc+=("$w" "$v")
  done
  # Global flags before the command (gaxx --home D run ...): skipped, with their values.
  i=1
  while ((i < COMP_CWORD)); do
    case "\${COMP_WORDS[i]}" in
      ${g.value.join('|')}) if [[ "\${COMP_WORDS[i+1]}" == "=" ]]; then ((i += 3)); else ((i += 2)); fi ;;
      ${[...g.bool, withEq(g.value)].filter(Boolean).join('|')}) ((i += 1)) ;;
      *) break ;;
    esac
  done
  if ((i > COMP_CWORD)); then
    # The value of a global flag before the command.
    f="$prev"; [[ "$prev" == "=" ]] && f="\${COMP_WORDS[COMP_CWORD-2]}"
    [[ "$cur" == "=" ]] && cur=""
    case "$f" in ${globalValueArms} esac
    return
  fi
  ci=$i
  if ((COMP_CWORD == ci)); then
    if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W ${q([...g.value, ...g.bool, '--help', '--version'].join(' '))} -- "$cur") ); return; fi
    COMPREPLY=( $(compgen -W ${q(top.join(' '))} -- "$cur") ); return
  fi
  cmd="\${COMP_WORDS[ci]}"
  case "$cmd" in
${subs}
  esac
  pos=$((ci + 1))
  if [[ -n "$subs" ]]; then
    if ((COMP_CWORD == ci + 1)) && [[ "$cur" != -* ]]; then COMPREPLY=( $(compgen -W "$subs" -- "$cur") ); return; fi
    if [[ " $subs " == *" \${COMP_WORDS[ci+1]} "* ]]; then cmd="$cmd \${COMP_WORDS[ci+1]}"; pos=$((ci + 2)); fi
  fi
  case "$cmd" in
${cases}
  esac
  if [[ "$prev" == "--fleet" ]]; then COMPREPLY=( $(compgen -W "$(_gaxx_fleets)" -- "$cur") ); return; fi
  if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "$flags" -- "$cur") ); return; fi
  # Which positional the cursor is at: the words before it that are neither flags nor their values.
  for ((i = pos; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if [[ "$w" == -* ]]; then
      if [[ " $vflags " == *" $w "* ]]; then [[ "\${COMP_WORDS[i+1]}" == "=" ]] && i=$((i + 1)); i=$((i + 1)); fi
    elif [[ "$w" != "=" ]]; then n=$((n + 1)); fi
  done
  if [[ "$poskind" == fleet ]] && ((n == 0)); then COMPREPLY=( $(compgen -W "$(_gaxx_fleets)" -- "$cur") ); return; fi
  if [[ "$poskind" == path ]]; then
    # SRC and DST: a fleet's F: (no space after it, the remote path follows) or a local path.
    for f in $(_gaxx_fleets); do fl+="$f: "; done
    COMPREPLY=( $(compgen -W "$fl" -- "$cur") )
    _gaxx_paths -f
    if ((\${#COMPREPLY[@]} == 1)) && [[ "\${COMPREPLY[0]}" == *: ]]; then compopt -o nospace 2>/dev/null; fi
    return
  fi
  if [[ -n "$poskind" ]] && ((n == 0)); then COMPREPLY=( $(compgen -W "$poskind" -- "$cur") ); return; fi
  _gaxx_paths -f
}
complete -F _gaxx gaxx
`;
}

/** Zsh: the bash function through zsh's bashcompinit (`source <(gaxx completion zsh)`). */
export function zshScript(cmds: readonly CompletionCommand[], globals: Record<string, GlobalSpec> = CONFIG_FLAGS): string {
  return `# gaxx completion for zsh: source <(gaxx completion zsh)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashScript(cmds, globals).split('\n').slice(1).join('\n')}`;
}

/**
 * Fish's helpers: `__gaxx_cmd` prints the command typed so far after any global flags ('' none
 * yet, 'certs' before its subcommand, 'certs issue'); `__gaxx_is W...` asks whether it is W;
 * `__gaxx_fleets` prints the fleet names of the installation the line names (--home, --state-dir).
 */
function fishHelpers(cmds: readonly CompletionCommand[], globals: Record<string, GlobalSpec>): string[] {
  const g = globalWords(globals);
  const groups = [...new Set(cmds.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0] as string))];
  const subsOf = (grp: string) => cmds.filter((c) => c.name.startsWith(`${grp} `)).map((c) => c.name.split(' ')[1] as string);
  return [
    'function __gaxx_cmd',
    '    set -l toks (commandline -opc)',
    '    set -e toks[1]',
    '    while set -q toks[1]',
    // contains and string match, not switch: a `case --help` pattern would be taken as asking for help.
    `        if contains -- $toks[1] ${g.value.join(' ')}`,
    '            set -e toks[1]',
    '            set -q toks[1]; and set -e toks[1]',
    `        else if contains -- $toks[1] ${g.bool.join(' ')}; or string match -qr -- ${q(`^(${g.value.join('|')})=`)} $toks[1]`,
    '            set -e toks[1]',
    '        else',
    '            break',
    '        end',
    '    end',
    '    set -q toks[1]; or return',
    '    switch $toks[1]',
    ...groups.flatMap((grp) => [
      `        case ${grp}`,
      `            if set -q toks[2]; and contains -- $toks[2] ${subsOf(grp).join(' ')}`,
      '                echo $toks[1] $toks[2]',
      '                return',
      '            end',
    ]),
    '    end',
    '    echo $toks[1]',
    'end',
    'function __gaxx_is',
    '    set -l c (__gaxx_cmd)',
    '    test "$c" = "$argv"',
    'end',
    'function __gaxx_fleets',
    '    set -l loc',
    '    set -l toks (commandline -opc)',
    '    for i in (seq 2 (count $toks))',
    '        set -l v',
    `        if contains -- $toks[$i] ${LOCATION_FLAGS.join(' ')}`,
    '            set -q toks[(math $i + 1)]; and set v $toks[(math $i + 1)]',
    `        else if string match -qr -- ${q(`^(${LOCATION_FLAGS.join('|')})=`)} $toks[$i]`,
    "            set v (string replace -r '^[^=]*=' '' -- $toks[$i])",
    '        end',
    "        set -q v[1]; and set -a loc (string replace -r '=.*' '' -- $toks[$i]) (string replace -r '^~(?=/|$)' $HOME -- $v)",
    '    end',
    '    gaxx $loc completion fleets 2>/dev/null',
    'end',
  ];
}

/** Fish: `gaxx completion fish | source`. Global flags may come before the command, as in bash. */
export function fishScript(cmds: readonly CompletionCommand[], globals: Record<string, GlobalSpec> = CONFIG_FLAGS): string {
  const fleets = "'(__gaxx_fleets)'";
  const lines = ['# gaxx completion for fish: gaxx completion fish | source', 'complete -c gaxx -f', ...fishHelpers(cmds, globals)];
  const tops = new Map<string, string>();
  for (const c of cmds)
    if (!tops.has(c.name.split(' ')[0] as string))
      tops.set(c.name.split(' ')[0] as string, c.name.includes(' ') ? `${c.name.split(' ')[0]} commands` : c.summary);
  for (const [t, d] of tops) lines.push(`complete -c gaxx -n '__gaxx_is' -a ${q(t)} -d ${q(d.slice(0, 60))}`);
  // Before the command: the global flags (and --help, --version).
  const g = globalWords(globals);
  for (const f of [...g.value, ...g.bool, '--help', '--version']) {
    const values = g.values[f];
    const arg = values ? ` -x -a ${q(values.join(' '))}` : g.value.includes(f) ? ' -r' : '';
    lines.push(`complete -c gaxx -n '__gaxx_is' -l ${f.slice(2)}${arg}`);
  }
  for (const c of cmds) {
    const [grp, sub] = c.name.split(' ') as [string, string | undefined];
    const cond = q(`__gaxx_is ${c.name}`);
    if (sub) lines.push(`complete -c gaxx -n ${q(`__gaxx_is ${grp}`)} -a ${q(sub)} -d ${q(c.summary.slice(0, 60))}`);
    for (const f of c.flags) {
      const opt = f.startsWith('--') ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`;
      const values = c.flagValues[f];
      const arg = c.fleetFlags.includes(f) ? ` -x -a ${fleets}` : values ? ` -x -a ${q(values.join(' '))}` : c.valueFlags.includes(f) ? ' -r' : '';
      lines.push(`complete -c gaxx -n ${cond} ${opt}${arg}`);
    }
    const pos = c.positional;
    if (pos === 'fleet') lines.push(`complete -c gaxx -n ${cond} -a ${fleets}`);
    else if (pos === 'fleet-path') lines.push(`complete -c gaxx -n ${cond} -F -a '(__gaxx_fleets)":"'`);
    else if (pos) lines.push(`complete -c gaxx -n ${cond} -a ${q(pos.join(' '))}`);
  }
  return `${lines.join('\n')}\n`;
}
