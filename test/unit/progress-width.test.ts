// Progress lines on a narrow terminal: every line drawn in place fits in the terminal's width
// (one column spare), as it is at each redraw, so that no line wraps onto a second row, which
// the next redraw (\r, erase-line) would leave behind. Fake stderr streams with `columns`.
import { describe, expect, it } from 'vitest';
import { Output } from '../../cli/output.js';
import { ProgressLine, progressText, type ProgressCounts } from '../../cli/run/progress.js';
import { displayWidth, fitParts, lineRoom } from '../../cli/terminal.js';
import { eventually } from '../helpers/poll.js';

const REDRAW = '\r\x1b[2K';

/** A terminal's stderr `columns` wide (change `columns` to resize it), keeping what was written. */
function narrowTerminal(columns: number) {
  const stderr = { columns, text: '', write: (s: string | Buffer) => ((stderr.text += s.toString()), true) };
  const stdout = { write: () => true };
  return { io: { stdout, stderr, stderrLive: true } as unknown as ConstructorParameters<typeof Output>[0], stderr };
}

/** The lines drawn (what follows each erase-line), without the empty ones of a hide. */
function drawn(text: string): string[] {
  return text.split(REDRAW).filter(Boolean);
}

const counts: ProgressCounts = { done: 1, failed: 0, refused: 0, cancelled: 0, enqueued: 40, total: 40 };

describe('the progress line of a run', () => {
  it('leaves off whole parts from the end to fit, never a number cut in two', () => {
    const full = progressText(counts, 2000);
    expect(full).toBe('gaxx: 1/40 done, 0 failed, 0.5/s, ETA 78s');
    const fitted = progressText(counts, 2000, lineRoom(40));
    expect(fitted).toBe('gaxx: 1/40 done, 0 failed, 0.5/s');
    expect(progressText(counts, 2000, lineRoom(12))).toBe('gaxx: 1/40 ');
  });

  it('drawn on a 40-column terminal, each redraw fits; after a resize to 20 columns, in the new width', async () => {
    const t = narrowTerminal(40);
    const line = new ProgressLine(t.io, true, () => counts);
    try {
      expect(await eventually(() => drawn(t.stderr.text).length >= 2, 10_000)).toBe(true);
      for (const l of drawn(t.stderr.text)) expect(displayWidth(l), l).toBeLessThan(40);
      t.stderr.columns = 20;
      const before = t.stderr.text.length;
      expect(await eventually(() => drawn(t.stderr.text.slice(before)).length >= 2, 10_000)).toBe(true);
      for (const l of drawn(t.stderr.text.slice(before))) expect(displayWidth(l), l).toBeLessThan(20);
    } finally {
      line.stop();
    }
  });
});

describe('the progress display of init, cp, status and spawn (Output.progress)', () => {
  it('fits the terminal: the time left off first, then the detail cut; in the new width after a resize', () => {
    const t = narrowTerminal(30);
    const p = new Output(t.io, false).progress('fleet web');
    p.update('12/40 hosts: h-0123456789.example.internal');
    p.update('3/40');
    t.stderr.columns = 16;
    p.update('4/40 hosts');
    p.done();
    const lines = drawn(t.stderr.text);
    expect(lines).toHaveLength(4);
    expect(lines[1]).toBe('fleet web: 12/40 hosts: h-012');
    expect(lines[2]).toMatch(/^fleet web: 3\/40 \(\d+\.\ds\)$/);
    expect(lines[3]).toBe('fleet web: 4/40');
    for (const [i, l] of lines.entries()) expect(displayWidth(l), l).toBeLessThan(i < 3 ? 30 : 16);
  });
});

describe('terminal widths', () => {
  it('counts wide characters as two columns and cuts before one that does not fit', () => {
    expect(displayWidth('ab漢字')).toBe(6);
    expect(fitParts(['漢字漢字'], 5)).toBe('漢字');
    expect(lineRoom(undefined)).toBeUndefined();
    expect(fitParts(['a', 'b'], undefined)).toBe('ab');
  });
});
