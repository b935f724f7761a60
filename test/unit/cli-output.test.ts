import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Output, renderTable } from '../../cli/output.js';

function io(tty: boolean) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const text = { out: '', err: '' };
  stdout.on('data', (d: Buffer) => (text.out += d.toString()));
  stderr.on('data', (d: Buffer) => (text.err += d.toString()));
  return { io: { stdout, stderr, stderrLive: tty }, text };
}

describe('Output', () => {
  it('--json: the value as JSON on stdout, diagnostics on stderr only', () => {
    const { io: s, text } = io(false);
    const out = new Output(s, true);
    out.note('working');
    out.result({ a: 1 }, () => 'human');
    expect(JSON.parse(text.out)).toEqual({ a: 1 });
    expect(text.err).toBe('working\n');
  });

  it('human: the text on stdout with a trailing newline', () => {
    const { io: s, text } = io(false);
    new Output(s, false).result({ a: 1 }, () => 'a is 1');
    expect(text.out).toBe('a is 1\n');
  });

  it('progress draws only on a terminal and clears its line', () => {
    const plain = io(false);
    const p1 = new Output(plain.io, false).progress('work');
    p1.update('step');
    p1.done();
    expect(plain.text.err).toBe('');
    const tty = io(true);
    const p2 = new Output(tty.io, false).progress('work');
    p2.update('step');
    p2.done();
    expect(tty.text.err).toContain('work: step');
    expect(tty.text.err.endsWith('\r\x1b[2K')).toBe(true);
  });

  it('renderTable aligns columns', () => {
    const t = renderTable(
      [
        { a: 'x', b: '1' },
        { a: 'long', b: '22' },
      ],
      [
        { header: 'A', get: (r) => r.a },
        { header: 'B', get: (r) => r.b },
      ],
    );
    expect(t.split('\n')).toEqual(['A     B', 'x     1', 'long  22']);
  });
});
