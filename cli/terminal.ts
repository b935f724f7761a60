/**
 * What gaxx may draw on a terminal, decided here and nowhere else (main.ts asks, for the
 * process's streams): colour on stdout, and a line redrawn in place on stderr (a progress line:
 * carriage return and erase-line). A terminal whose TERM is `dumb`, or that names none (Emacs'
 * shell, a bare `script`, some CI log viewers), shows escape sequences as text: it gets neither,
 * as ls, git and grep decide. NO_COLOR set and not empty (no-color.org) turns colour off on any
 * terminal; an empty NO_COLOR leaves it on.
 */

/** The environment variables the decision reads. */
export interface TerminalEnv {
  readonly TERM?: string | undefined;
  readonly NO_COLOR?: string | undefined;
}

/** Whether the terminal named by TERM cannot take escape sequences: `dumb`, or none named. */
export function dumbTerminal(env: TerminalEnv): boolean {
  return !env.TERM || env.TERM === 'dumb';
}

/** Colour on a stream: it is a terminal (`isTty`, asked only when the rest allows colour) that is not dumb, and NO_COLOR is unset or empty. */
export function colourOn(env: TerminalEnv, isTty: () => boolean): boolean {
  return !env.NO_COLOR && !dumbTerminal(env) && isTty();
}

/** Lines redrawn in place on a stream: it is a terminal (`isTty`) that is not dumb. */
export function redrawOn(env: TerminalEnv, isTty: () => boolean): boolean {
  return !dumbTerminal(env) && isTty();
}

/** The columns a code point takes on a terminal: 0 for combining marks, 2 for wide East Asian characters and emoji, else 1. */
function columnsOf(cp: number): number {
  if (cp < 0x300) return 1;
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  const wide =
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd);
  return wide ? 2 : 1;
}

/** How many columns `text` (printable: no control characters) takes on a terminal. */
export function displayWidth(text: string): number {
  let n = 0;
  for (const ch of text) n += columnsOf(ch.codePointAt(0) as number);
  return n;
}

/**
 * How many columns a line redrawn in place may take on a terminal `columns` wide: one less,
 * so that the cursor never reaches the last column (where a terminal may wrap, leaving the
 * line on two rows of which the next redraw clears one); undefined when the width is unknown.
 */
export function lineRoom(columns: number | undefined): number | undefined {
  return columns !== undefined && Number.isInteger(columns) && columns > 0 ? Math.max(1, columns - 1) : undefined;
}

/** `text` cut to at most `room` columns (as it is when it fits, or `room` is undefined). */
export function fitWidth(text: string, room: number | undefined): string {
  if (room === undefined || displayWidth(text) <= room) return text;
  let out = '';
  let n = 0;
  for (const ch of text) {
    const w = columnsOf(ch.codePointAt(0) as number);
    if (n + w > room) break;
    out += ch;
    n += w;
  }
  return out;
}

/**
 * The parts of a line joined, as many as fit in `room` columns from the first (a part is
 * dropped whole, never cut, so no number is shown half); the first alone is cut when it does
 * not fit by itself.
 */
export function fitParts(parts: readonly string[], room: number | undefined): string {
  let line = parts[0] ?? '';
  for (const part of parts.slice(1)) {
    if (room !== undefined && displayWidth(line + part) > room) break;
    line += part;
  }
  return fitWidth(line, room);
}
