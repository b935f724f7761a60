/**
 * The progress line of a run on a terminal's stderr: done/total, failed (and refused and
 * cancelled, each counted apart), rate and ETA, redrawn
 * at most every 200 ms. Output written meanwhile clears it first (`hide`), so lines never mix.
 * It is cut to the terminal's width as it is at each redraw (after a resize too): a line that
 * wrapped onto a second row would leave that row behind at every redraw.
 * Off (every method a no-op) when stderr is not a terminal that can redraw a line (Io.stderrLive).
 */
import type { Io } from '../output.js';
import { fitParts, lineRoom } from '../terminal.js';

const REDRAW_MS = 200;

/** Live counts a progress line shows. */
export interface ProgressCounts {
  done: number;
  /** Done and neither succeeded, refused nor cancelled. */
  failed: number;
  /** Records that could not become a task. */
  refused: number;
  /** Withdrawn or stopped by a cancel. */
  cancelled: number;
  enqueued: number;
  /** The total, once the whole input has been read. */
  total: number | undefined;
}

/** A redrawn progress line; `text` is pure so it is unit-tested. */
export class ProgressLine {
  private shown = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();

  constructor(
    private readonly io: Io,
    private readonly enabled: boolean,
    private readonly counts: () => ProgressCounts,
  ) {
    if (enabled) this.timer = setInterval(() => this.draw(), REDRAW_MS);
    this.timer?.unref();
  }

  /** Clears the line before other output (it is redrawn on the next tick). */
  hide(): void {
    if (!this.shown) return;
    this.io.stderr.write('\r\x1b[2K');
    this.shown = false;
  }

  private draw(): void {
    this.hide();
    // Node keeps a terminal's columns up to date (SIGWINCH): read at each redraw.
    const room = lineRoom((this.io.stderr as { columns?: number }).columns);
    this.io.stderr.write(progressText(this.counts(), Date.now() - this.started, room));
    this.shown = true;
  }

  /** Removes the line for good. */
  stop(): void {
    clearInterval(this.timer);
    this.hide();
  }
}

/**
 * `1234/2000 done, 3 failed, 250.0/s, ETA 3s`, with `, N refused` and `, N cancelled` when there
 * are any; `1234/1500+` while input is still being read (1500 records read so far, more to come).
 * Within `room` columns (lineRoom), the parts that do not fit are left off from the end.
 */
export function progressText(c: ProgressCounts, elapsedMs: number, room?: number): string {
  const rate = elapsedMs > 0 ? (c.done * 1000) / elapsedMs : 0;
  const of = c.total === undefined ? `${c.enqueued}+` : String(c.total);
  const eta = c.total !== undefined && rate > 0 ? `, ETA ${Math.ceil((c.total - c.done) / rate)}s` : '';
  const apart = [c.refused ? `, ${c.refused} refused` : '', c.cancelled ? `, ${c.cancelled} cancelled` : ''];
  return fitParts([`gaxx: ${c.done}/${of} done`, `, ${c.failed} failed`, ...apart, `, ${rate.toFixed(1)}/s`, eta], room);
}
