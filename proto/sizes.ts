/**
 * The one size syntax of every gaxx flag and setting that counts bytes: digits, optionally with
 * a binary unit (`k`, `M`, `G`, also written `KiB`, `MiB`, `GiB`): 65536, 64k, 16MiB. Used by
 * the agent and the CLI.
 */
const SIZES: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Matches a size such as `65536`, `64k`, `64KiB`, `16M`, `1G`. */
export const SIZE_PATTERN = /^(\d+)(?:([kKmMgG])(?:i?B)?)?$/;

/** What to say when a value is not a size. */
export const SIZE_HINT = 'a size in bytes, like 65536, 64k, 16M (or 64KiB, 16MiB)';

/** Bytes of a size, or undefined when `text` is not one. */
export function parseSize(text: string): number | undefined {
  const m = SIZE_PATTERN.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * (SIZES[(m[2] ?? '').toLowerCase()] as number);
}

/** `bytes` in its largest whole binary unit: 64M, 1k, 1000. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [
    ['G', 1024 ** 3],
    ['M', 1024 ** 2],
    ['k', 1024],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}
