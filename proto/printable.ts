/**
 * Text safe to show on a terminal. Names, ids, commands and messages that gaxx prints for people
 * come partly from places others can write (Redis, an agent's reply): a control character in one
 * would reach the operator's terminal as a command (an escape sequence that sets the title,
 * clears the screen, moves the cursor over earlier lines or plants a hyperlink). printable()
 * writes every such character as a visible escape instead, so a sequence shows as text
 * (`\x1b[2J`), and text without them is returned as it is.
 *
 * Escaped: C0 controls (U+0000-U+001F, tab and newline too: a metadata field is one line), DEL,
 * C1 controls (U+0080-U+009F, which terminals take as ESC [ and the like), the bidirectional
 * overrides, isolates and marks (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), which
 * reorder what is shown, and the invisible ones (zero-width U+200B-U+200D, U+FEFF; the line and
 * paragraph separators U+2028, U+2029). Task output is its bytes, shown as they are, except
 * where gaxx labels its lines with their host (printableOutputLine): there a carriage return or
 * an escape sequence would write over the label, another host's line or gaxx's own.
 */

// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;
/** The same, newlines and tabs aside: text of several lines, as gaxx writes it. */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE_IN_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

const NAMED: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED[c] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
}

/** `text` with every control character written as a visible escape (`\x1b`, `\n`, `\u202e`). */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escapeChar);
}

/**
 * `text` with every control character escaped but its newlines and tabs: for whole messages and
 * tables gaxx writes for people (cli/output.ts), whose lines and columns are its own.
 */
export function printableLines(text: string): string {
  return text.replace(UNPRINTABLE_IN_LINES, escapeChar);
}

/** The lead bytes of every character UNPRINTABLE_IN_LINES names, as UTF-8 (and the C0/DEL bytes). */
// eslint-disable-next-line no-control-regex
const MAYBE_UNPRINTABLE_BYTES = /[\x00-\x08\x0b-\x1f\x7f\xc2\xd8\xe2\xef]/;

/**
 * One line of a task's output as a labelled view shows it (`host: line`): its control characters
 * (all but the newline and tabs) written as visible escapes, as printableLines does, so that no
 * output moves the cursor over its label or another line. A line without them is returned as it
 * is, bytes and all; one with them is read as UTF-8 (a byte that is not is shown as U+FFFD).
 */
export function printableOutputLine(line: Buffer): Buffer {
  if (!MAYBE_UNPRINTABLE_BYTES.test(line.toString('latin1'))) return line;
  const text = line.toString('utf8');
  const shown = printableLines(text);
  return shown === text ? line : Buffer.from(shown);
}
