/**
 * The command template of `gaxx run --tasks`: `{}` stands for the task's input record and `{#}`
 * for its 1-based sequence number. The argv is never handed to a shell by gaxx: each element
 * stays one argument, so a record with spaces, quotes or `;` is passed as data.
 *
 * `{}` inside a larger word is replaced there too (as GNU parallel does: `out/{}.txt`), still as
 * part of that one argument. The one place where that would splice data into shell text, the
 * script of `sh -c SCRIPT` (and bash, dash, zsh, ksh, mksh, ash, fish; clustered as `-ec`, after
 * options as `bash --norc -c`), is refused wherever the shell stands in argv, since a wrapper
 * (`nice`, `timeout 5`, `xargs`, `env VAR=1`...) runs the words after it: pass the record as a
 * positional parameter instead, `sh -c 'echo "$1"' _ {}`. Other interpreters' code (`python3 -c`,
 * `perl -e`, the remote command of `ssh`) is not looked into.
 * A template with no `{}` gets the record appended as its last argument (like xargs/parallel).
 */
import { GaxxError } from '../../proto/index.js';

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'fish']);
/** Shell options that take the next word as their argument (`-o pipefail`, `--rcfile FILE`). */
const OPTIONS_WITH_ARGUMENT = /^[-+][A-Za-z]*[oO]$|^--(rcfile|init-file)$/;
const PLACEHOLDER = /\{\}|\{#\}/g;

/** Whether any element mentions `{}` or `{#}`. */
export function hasPlaceholder(argv: readonly string[]): boolean {
  return argv.some((a) => a.includes('{}') || a.includes('{#}'));
}

/** The index of the script of the shell at argv[at] (`sh [options] -c SCRIPT`), or -1 when it is given none. */
function scriptOf(argv: readonly string[], at: number): number {
  let script = false;
  for (let i = at + 1; i < argv.length; i++) {
    const a = argv[i] as string;
    // `--` ends the options: the script follows it when -c came before.
    if (a === '--') return script && i + 1 < argv.length ? i + 1 : -1;
    if (a.startsWith('--')) {
      if (OPTIONS_WITH_ARGUMENT.test(a)) i++;
      continue;
    }
    if (/^[-+][A-Za-z]+$/.test(a)) {
      // -c, -ec, -xc, -lc ...: the script is the first word that is no option.
      if (a.startsWith('-') && a.includes('c')) script = true;
      if (OPTIONS_WITH_ARGUMENT.test(a)) i++;
      continue;
    }
    // The first word that is no option: the script after -c, else a script file (`sh run.sh`).
    return script ? i : -1;
  }
  return -1;
}

/**
 * The indices of every shell script in argv: the word after `-c` (also clustered, as in `-ec`)
 * of a shell named anywhere in it, since wrappers run the rest of their argv as a command
 * (`nice`, `timeout 5`, `env VAR=1`, `xargs`, `setsid`, `stdbuf -oL`, `busybox`, `sudo -u U`).
 */
export function shellScripts(argv: readonly string[]): number[] {
  const found: number[] = [];
  argv.forEach((a, i) => {
    if (!SHELLS.has(a.split('/').pop() ?? '')) return;
    const script = scriptOf(argv, i);
    if (script !== -1) found.push(script);
  });
  return found;
}

/** A compiled template: renders one task's argv from its record. */
export class CommandTemplate {
  private readonly append: boolean;

  private constructor(private readonly argv: readonly string[]) {
    this.append = !hasPlaceholder(argv);
  }

  /** Checks and compiles; USAGE when `{}` would land inside a shell script. */
  static compile(argv: readonly string[]): CommandTemplate {
    if (argv.length === 0 || argv[0] === '') throw new GaxxError('USAGE', 'give the command after --, e.g. gaxx run --tasks FILE -- echo {}');
    const script = shellScripts(argv).find((i) => hasPlaceholder([argv[i] as string]));
    if (script !== undefined) {
      throw new GaxxError(
        'USAGE',
        `{} inside a shell script ('${argv[script]}') would run input as shell code; pass it as an argument: ${argv.slice(0, script).join(' ')} '... "$1" ...' _ {}`,
      );
    }
    return new CommandTemplate(argv);
  }

  /** The argv of the task with `record` and sequence number `seq`. */
  render(record: string, seq: number): string[] {
    if (this.append) return [...this.argv, record];
    return this.argv.map((a) => (a.includes('{') ? a.replace(PLACEHOLDER, (m) => (m === '{}' ? record : String(seq))) : a));
  }
}
