/**
 * Checks a command's `--help` text against itself: its usage line must name every flag of its
 * flag list (a string flag with the same value name, e.g. `--timeout D` on both), and no flag the
 * list lacks. Read from the text, so the same check runs on the source's help (unit) and on the
 * built CLI's output (e2e).
 */

/** One flag of a help text's Flags list. */
interface ListedFlag {
  name: string;
  short?: string;
  valueName?: string;
}

/** The lines of `help` after the line `heading` up to the next blank line. */
function section(help: string, heading: RegExp): string[] {
  const lines = help.split('\n');
  const at = lines.findIndex((l) => heading.test(l));
  if (at === -1) return [];
  const end = lines.findIndex((l, i) => i > at && l.trim() === '');
  return lines.slice(at, end === -1 ? undefined : end);
}

/** The flags a help text lists (its own `--help` left out). */
export function listedFlags(help: string): ListedFlag[] {
  return section(help, /^Flags:$/)
    .slice(1)
    .flatMap((line) => {
      const m = /^ {2}(?:-(\w), | {4})--([\w-]+)(?: (\S+))? {2,}/.exec(line);
      if (!m) return [];
      return [{ name: m[2] as string, ...(m[1] ? { short: m[1] } : {}), ...(m[3] ? { valueName: m[3] } : {}) }];
    })
    .filter((f) => f.name !== 'help');
}

/** The usage text of a help text (every line of its Usage paragraph). */
export function usageText(help: string): string {
  return section(help, /^Usage: /).join(' ');
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** What disagrees between a help text's usage line and its flag list; empty when they agree. */
export function usageProblems(help: string): string[] {
  const usage = usageText(help);
  const flags = listedFlags(help);
  const problems: string[] = [];
  if (!usage) return ['no Usage line'];
  for (const f of flags) {
    const uses = [...usage.matchAll(new RegExp(`(?<![\\w-])--${escape(f.name)}(?![\\w-])( \\S+)?`, 'g'))].map((m) => m[1]?.slice(1));
    const short = f.short !== undefined && new RegExp(`(?<![\\w-])-${escape(f.short)}(?![\\w-])`).test(usage);
    if (uses.length === 0 && !short) problems.push(`--${f.name} is not in the usage line`);
    for (const given of uses) {
      // The word after the flag may end in the brackets that close around it (`[--timeout D]`).
      const fits = given !== undefined && f.valueName !== undefined && given.startsWith(f.valueName) && /^[\])]*$/.test(given.slice(f.valueName.length));
      if (f.valueName !== undefined && !fits) problems.push(`--${f.name}: the usage line says '${given ?? ''}', the flag list '${f.valueName}'`);
      if (f.valueName === undefined && given !== undefined && /^[A-Z]/.test(given))
        problems.push(`--${f.name} takes no value, the usage line gives it '${given}'`);
    }
  }
  const known = new Set(flags.map((f) => f.name));
  for (const m of usage.matchAll(/(?<![\w-])--([a-z][\w-]*)/g)) {
    if (!known.has(m[1] as string)) problems.push(`the usage line names --${m[1]}, which the flag list lacks`);
  }
  return problems;
}
