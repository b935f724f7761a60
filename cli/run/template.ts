/**
 * The command template of `gaxx run --tasks`: `{}` stands for the task's input record and `{#}`
 * for its 1-based sequence number. The argv is never handed to a shell by gaxx: each element
 * stays one argument, so a record with spaces, quotes or `;` is passed as data.
 *
 * `{}` inside a larger word is replaced there too (as GNU parallel does: `out/{}.txt`), still as
 * part of that one argument. The one place where that would splice data into shell text, the
 * script of `sh -c SCRIPT` (and bash, dash, zsh, ksh, ash, busybox sh), is refused: pass the
 * record as a positional parameter instead, `sh -c 'echo "$1"' _ {}`.
 * A template with no `{}` gets the record appended as its last argument (like xargs/parallel).
 */
import { GaxxError } from '../../proto/index.js';

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'busybox', 'fish']);
const PLACEHOLDER = /\{\}|\{#\}/g;

/** Whether any element mentions `{}` or `{#}`. */
export function hasPlaceholder(argv: readonly string[]): boolean {
  return argv.some((a) => a.includes('{}') || a.includes('{#}'));
}

/** The index of a shell's `-c` script in argv, or -1. */
function shellScriptIndex(argv: readonly string[]): number {
  const base = (argv[0] ?? '').split('/').pop() ?? '';
  let i = 1;
  if (base === 'busybox' || base === 'env') {
    // `busybox sh -c`, `env sh -c`: look at the real shell.
    if (!SHELLS.has((argv[1] ?? '').split('/').pop() ?? '')) return -1;
    i = 2;
  } else if (!SHELLS.has(base)) return -1;
  for (; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('-') || a === '--') return -1;
    // -c, -ec, -xc, -lc ...: the script is the next non-option argument.
    if (/^-[A-Za-z]*c[A-Za-z]*$/.test(a)) return i + 1 < argv.length ? i + 1 : -1;
  }
  return -1;
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
    const script = shellScriptIndex(argv);
    if (script !== -1 && hasPlaceholder([argv[script] as string])) {
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
