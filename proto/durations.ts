/**
 * The one duration syntax of every gaxx flag and setting: digits with a unit (`ms`, `s`, `m`,
 * `h`), or `0`. A bare number is refused: `30` could mean 30 ms or 30 s, and both meanings had
 * users. Used by the agent, the scheduler and the CLI.
 */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Matches a duration such as `500ms`, `30s`, `10m`, `1h`, or `0`. */
export const DURATION_PATTERN = /^(?:0|(\d+)(ms|s|m|h))$/;

/** What to say when a value is not a duration (`or 0` only where 0 is taken). */
export function durationHint(zeroTaken = true): string {
  return `a duration with a unit, like 500ms, 30s, 10m, 1h${zeroTaken ? ' (or 0)' : ''}`;
}

/** Node's longest timer: setTimeout with more than 2^31-1 ms fires after 1 ms instead. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The longest duration a setting takes unless it names its own maximum: 596h, the whole hours
 * below Node's timer limit. A longer one would become a 1 ms timer (a busy loop, or a timeout
 * that fires at once).
 */
export const MAX_DURATION_MS = 596 * 3_600_000;

/** Milliseconds of a duration, or undefined when `text` is not one. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION_PATTERN.exec(text);
  if (!m) return undefined;
  return m[1] === undefined ? 0 : Number(m[1]) * (UNITS[m[2] as string] as number);
}

/** `ms` in its largest whole unit: 168h, 90m, 1500ms. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** Bounds of a duration setting, in ms. */
export interface DurationBounds {
  /** Default 0. */
  minMs?: number;
  /** Default MAX_DURATION_MS. */
  maxMs?: number;
}

/**
 * Milliseconds of `text` within its bounds, or what is wrong with it (a phrase that follows the
 * setting's name: "must be at most 596h"). The one check of every duration flag and setting.
 */
export function checkDuration(text: string, bounds: DurationBounds = {}): { ms: number } | { problem: string } {
  const { minMs = 0, maxMs = MAX_DURATION_MS } = bounds;
  const ms = parseDuration(text);
  if (ms === undefined) {
    // `-1s` has its unit: what is wrong is the sign.
    if (text.startsWith('-') && parseDuration(text.slice(1)) !== undefined) return { problem: `must not be negative (${durationHint(minMs === 0)})` };
    return { problem: `must be ${durationHint(minMs === 0)}` };
  }
  if (ms > maxMs) return { problem: `must be at most ${formatDuration(maxMs)}` };
  if (ms < minMs) return { problem: `must be at least ${formatDuration(minMs)}` };
  return { ms };
}
