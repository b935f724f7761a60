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
