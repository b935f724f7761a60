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
 * reorder what is shown, and the characters that show nothing where they stand (INVISIBLE): the
 * zero-width ones, the soft hyphen, word joiner and invisible operators, the deprecated format
 * controls, the Hangul and Mongolian fillers, interlinear annotation marks, the line and paragraph
 * separators and the tag characters (U+E0000-U+E007F), with which a name can look like another
 * or hide text. Task output is its bytes, shown as they are, except
 * where gaxx labels its lines with their host (printableOutputLine): there a carriage return or
 * an escape sequence would write over the label, another host's line or gaxx's own.
 */

import { isUtf8 } from 'node:buffer';

/** Characters that show nothing where they stand (joiners, fillers, format controls, tags). */
const INVISIBLE = String.raw`\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200d\u2028\u2029\u2060-\u2064\u206a-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\u{e0000}-\u{e007f}`;
/** Bidirectional marks, overrides and isolates: they reorder what is shown. */
const BIDI = String.raw`\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069`;
// The class holds U+034F (combining grapheme joiner) on purpose: matched alone, it is invisible.
// eslint-disable-next-line no-misleading-character-class
const UNPRINTABLE = new RegExp(`[\\u0000-\\u001f\\u007f-\\u009f${BIDI}${INVISIBLE}]`, 'gu');
/** The same, newlines and tabs aside: text of several lines, as gaxx writes it. */
// eslint-disable-next-line no-misleading-character-class
const UNPRINTABLE_IN_LINES = new RegExp(`[\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f${BIDI}${INVISIBLE}]`, 'gu');

const NAMED: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function escapeChar(c: string): string {
  const code = c.codePointAt(0) as number;
  if (NAMED[c] !== undefined) return NAMED[c];
  if (code <= 0xff) return `\\x${code.toString(16).padStart(2, '0')}`;
  return code <= 0xffff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\u{${code.toString(16)}}`;
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

/** C0 controls and DEL, and any byte of a character beyond ASCII (which may be unprintable, or not UTF-8). */
// eslint-disable-next-line no-control-regex
const MAYBE_UNPRINTABLE_BYTES = /[\x00-\x08\x0b-\x1f\x7f-\xff]/;

/** The length of the UTF-8 sequence lead byte `c` begins (0: it begins none). */
const sequenceLength = (c: number): number => (c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0);

/** `b` read as UTF-8, every byte that is not part of a valid sequence written as `\xNN`, not U+FFFD. */
function utf8Escaped(b: Buffer): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < b.length;) {
    const n = sequenceLength(b[i] as number);
    if (n === 1 || (n > 0 && i + n <= b.length && isUtf8(b.subarray(i, i + n)))) {
      i += n;
      continue;
    }
    out += `${b.toString('utf8', from, i)}\\x${(b[i] as number).toString(16).padStart(2, '0')}`;
    from = ++i;
  }
  return out + b.toString('utf8', from);
}

/**
 * One line of a task's output as a labelled view shows it (`host: line`): its control characters
 * (all but the newline and tabs) written as visible escapes, as printableLines does, so that no
 * output moves the cursor over its label or another line. A line of printable UTF-8 is returned
 * as it is, bytes and all; in any other a byte that is not UTF-8 is written as `\xNN` as well (a
 * lone 0x9b is CSI to a terminal in an 8-bit mode), so no byte is shown as another.
 */
export function printableOutputLine(line: Buffer): Buffer {
  if (!MAYBE_UNPRINTABLE_BYTES.test(line.toString('latin1'))) return line;
  const text = isUtf8(line) ? line.toString('utf8') : utf8Escaped(line);
  const shown = printableLines(text);
  return shown === text && isUtf8(line) ? line : Buffer.from(shown);
}
