/**
 * Ordering text for display and listings. By UTF-16 code units: the same on every machine and in
 * every locale, and free. `localeCompare` (and `Intl.Collator`) build ICU's collator on first use,
 * ~13 ms on a 2-core machine, which every short-lived command that sorts a list would pay (the
 * fleet lookup of `gaxx run --fleet` did, on the way to its first task). Lint refuses them in the
 * product code (eslint.config.js).
 */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
