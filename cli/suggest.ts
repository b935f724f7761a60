/**
 * "Did you mean ...?" for the CLI's words: commands, subcommands and flags all get their
 * suggestion here, so a typo is treated the same wherever it is made. Pure and tiny: the bundle's
 * front file carries it.
 */

/**
 * The edit distance between `a` and `b` with adjacent transpositions counted as one edit
 * (optimal string alignment, a restricted Damerau-Levenshtein): `rnu` is one edit from `run`,
 * as `staus` is from `status`.
 */
export function editDistance(a: string, b: string): number {
  // Three rows of the dynamic-programming table: a transposition looks two rows back.
  let back2: number[] = [];
  let back1 = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((back1[j] as number) + 1, (row[j - 1] as number) + 1, (back1[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, (back2[j - 2] as number) + 1);
      row.push(d);
    }
    back2 = back1;
    back1 = row;
  }
  return back1[b.length] as number;
}

/**
 * The candidate closest to `word`, when it is close enough to be what was meant: at most `limit`
 * edits, by default one per three characters of `word` (at least one), so `flet` finds `fleet`
 * but `scan` does not find `spawn`. Ties go to the first candidate.
 */
export function suggest(word: string, candidates: Iterable<string>, limit = Math.max(1, Math.floor(word.length / 3))): string | undefined {
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    if (c === word) continue;
    const d = editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** `; did you mean 'X'?` for a message, or '' when nothing is close. */
export function didYouMean(word: string, candidates: Iterable<string>, show: (s: string) => string = (s) => s): string {
  const s = suggest(word, candidates);
  return s === undefined ? '' : `; did you mean '${show(s)}'?`;
}
