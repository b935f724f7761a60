/**
 * The one duration syntax of every gaxx flag and setting: digits with a unit (`ms`, `s`, `m`,
 * `h`), or `0`. A bare number is refused: `30` could mean 30 ms or 30 s, and both meanings had
 * users. Used by the agent, the scheduler and the CLI.
 */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Matches a duration such as `500ms`, `30s`, `10m`, `1h`, or `0`. */
export const DURATION_PATTERN = /^(?:0|(\d+)(ms|s|m|h))$/;

/** What to say when a value is not a duration. */
export const DURATION_HINT = 'a duration with a unit, like 500ms, 30s, 10m, 1h (or 0)';

/** Milliseconds of a duration, or undefined when `text` is not one. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION_PATTERN.exec(text);
  if (!m) return undefined;
  return m[1] === undefined ? 0 : Number(m[1]) * (UNITS[m[2] as string] as number);
}
