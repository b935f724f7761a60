// printable(): metadata shown on a terminal never carries control characters; the human renderers use it.
import { describe, expect, it } from 'vitest';
import { Output, renderTable } from '../../cli/output.js';
import { summaryLine } from '../../cli/run-printer.js';
import { summarize, summaryText } from '../../cli/run/summary.js';
import { printable, printableOutputLine } from '../../proto/index.js';
import { taskResult } from '../../scheduler/index.js';

/** Any C0 control, DEL, C1 control or bidi override/isolate. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('printable', () => {
  it('leaves text without control characters as it is, non-ASCII included', () => {
    for (const s of ['', 'gaxx-a3-0', 'sh -c echo "a b" \\ c', 'héllo 日本 😀', '~!@#$%^&*()[]{}']) expect(printable(s)).toBe(s);
  });

  it('writes C0 controls, DEL, C1 controls and bidi controls as visible escapes', () => {
    expect(printable('\x1b]0;PWNED\x07\x1b[31mrm')).toBe('\\x1b]0;PWNED\\x07\\x1b[31mrm');
    expect(printable('a\tb\nc\rd\0e')).toBe('a\\tb\\nc\\rd\\x00e');
    expect(printable('x\x7fy')).toBe('x\\x7fy');
    // U+009B is CSI to a terminal in UTF-8 mode.
    expect(printable('\u009b2J\u0085')).toBe('\\x9b2J\\x85');
    expect(printable('abc\u202edef\u2066')).toBe('abc\\u202edef\\u2066');
    // Bidi marks, zero-width and line-separator characters: invisible, or reordering what is shown.
    expect(printable('a\u200eb\u200bc\u2028d\ufeffe\u061cf')).toBe('a\\u200eb\\u200bc\\u2028d\\ufeffe\\u061cf');
  });

  it('every message and human result the CLI writes has them escaped, its own newlines and tabs kept', () => {
    let err = '';
    let outText = '';
    const io = {
      stdout: { write: (s: string) => void (outText += s) },
      stderr: { write: (s: string) => void (err += s) },
    } as unknown as ConstructorParameters<typeof Output>[0];
    const out = new Output(io, false);
    out.note('gaxx: unreachable: h\x1b[2J (boom\u202e)\nsecond\tline');
    out.result({}, () => 'HOST\tRESULT\nh\x1b]0;t\x07\tok');
    expect(err).toBe('gaxx: unreachable: h\\x1b[2J (boom\\u202e)\nsecond\tline\n');
    expect(outText).toBe('HOST\tRESULT\nh\\x1b]0;t\\x07\tok\n');
  });

  it('writes the characters that show nothing as visible escapes: joiners, fillers, format controls, tags', () => {
    expect(printable('a\u00adb\u2060c\u2064d\u180ee\ufff9f\u3164g\u034fh')).toBe('a\\xadb\\u2060c\\u2064d\\u180ee\\ufff9f\\u3164g\\u034fh');
    // Tag characters (astral) spell hidden text; each is one escape, not two halves of a pair.
    expect(printable('ok\u{e0001}\u{e0068}\u{e007f}')).toBe('ok\\u{e0001}\\u{e0068}\\u{e007f}');
    // Emoji and other astral text stay.
    expect(printable('😀 𝔸')).toBe('😀 𝔸');
  });

  it('leaves no control character in any string', () => {
    let all = '';
    for (let c = 0; c < 0x2100; c++) all += String.fromCharCode(c);
    expect(printable(all)).not.toMatch(CONTROL);
  });
});

describe('printableOutputLine', () => {
  it('returns a line of printable UTF-8 as its very bytes, ASCII or not', () => {
    for (const t of ['plain ascii\tline', 'héllo 日本 😀']) {
      const b = Buffer.from(t);
      expect(printableOutputLine(b)).toBe(b);
    }
  });

  it('escapes control characters and invisible ones, and a byte that is not UTF-8 (a lone 0x9b: CSI in an 8-bit terminal) as \\xNN', () => {
    expect(printableOutputLine(Buffer.from('a\x1b]52;c;UFdO\x07b')).toString()).toBe('a\\x1b]52;c;UFdO\\x07b');
    expect(printableOutputLine(Buffer.from('x\u2060y')).toString()).toBe('x\\u2060y');
    const raw = Buffer.from([0x61, 0x9b, 0x32, 0x4a]);
    const shown = printableOutputLine(raw);
    expect([...shown]).not.toContain(0x9b);
    expect(shown.toString()).toBe('a\\x9b2J');
    // Latin-1 text with no control byte at all is not UTF-8 either: each such byte shown, not lost.
    expect(printableOutputLine(Buffer.from([0x63, 0x61, 0x66, 0xe9])).toString()).toBe('caf\\xe9');
    // NUL, then two bytes that begin no character, beside valid UTF-8 kept as it is; a sequence
    // cut short, an overlong form and a surrogate are bytes that are not UTF-8 too.
    expect(printableOutputLine(Buffer.from([0x61, 0x00, 0x62, 0xff, 0xfe, 0xc3, 0xa9])).toString()).toBe('a\\x00b\\xff\\xfe\u00e9');
    expect(printableOutputLine(Buffer.from([0xe6, 0x97, 0x41])).toString()).toBe('\\xe6\\x97A');
    expect(printableOutputLine(Buffer.from([0xc0, 0xaf, 0xed, 0xa0, 0x80])).toString()).toBe('\\xc0\\xaf\\xed\\xa0\\x80');
  });
});

describe('human renderers', () => {
  const evil = taskResult(
    { runId: 'r1', taskId: '1', host: 'h\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07', outcome: 'failed', reason: 'x\x1b[2K' },
    { exitCode: 1, error: 'boom\x1b[?1049h', startedOn: ['a\x1b[1A'], mayHaveRepeated: true },
  );

  it('renderTable makes every cell printable', () => {
    const table = renderTable(
      [{ a: 'ok', b: 'evil\x1b]0;TITLE\x07\x1b[2Jhost' }],
      [
        { header: 'A', get: (r) => r.a },
        { header: 'B', get: (r) => r.b },
      ],
    );
    for (const line of table.split('\n')) expect(line).not.toMatch(CONTROL);
    expect(table).toContain('evil\\x1b]0;TITLE\\x07\\x1b[2Jhost');
  });

  it("a task's summary line shows its host, reason, error and hosts it started on printable", () => {
    const line = summaryLine(evil);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toMatch(CONTROL);
    expect(line).toContain('h\\x1b]8;;http://evil.example/\\x07click');
    expect(line).toContain('boom\\x1b[?1049h');
  });

  it("the run's summary shows unreachable hosts printable", () => {
    const text = summaryText(summarize('r1', { unreachable: 1 }, 10, ['evil\x1b[2Jhost']));
    expect(text).toContain('evil\\x1b[2Jhost');
    expect(text.replace(/\n/g, '')).not.toMatch(CONTROL);
  });
});
