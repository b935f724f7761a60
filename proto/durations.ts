/**
 * The one duration syntax of every gaxx flag and setting: digits with an optional unit
 * (`ms`, `s`, `m`, `h`); a bare number is milliseconds. Used by the agent and the scheduler.
 */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Matches a duration such as `500ms`, `30s`, `10m`, `1h` or `250`. */
export const DURATION_PATTERN = /^(\d+)(ms|s|m|h)?$/;

/** Milliseconds of a duration, or undefined when `text` is not one. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION_PATTERN.exec(text);
  return m ? Number(m[1]) * (UNITS[m[2] ?? 'ms'] as number) : undefined;
}
