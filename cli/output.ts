/**
 * Rendering: results go to stdout (human text or one JSON document with --json), diagnostics
 * and progress to stderr, so `gaxx ... --json | jq` always sees clean JSON.
 */
import type { Readable, Writable } from 'node:stream';
import { printable, printableLines, raceAbort, type GaxxError } from '../proto/index.js';
import { fitParts, lineRoom } from './terminal.js';

/** The streams a command writes to (process streams in main.ts, captured ones in tests). */
export interface Io {
  stdout: Writable;
  stderr: Writable;
  /**
   * stderr is a terminal that can redraw a line in place (not a dumb one: cli/terminal.ts):
   * progress lines are drawn only then.
   */
  stderrLive: boolean;
  /** Standard input, for commands that forward it (absent: there is none to read). */
  stdin?: Readable;
  /** A terminal on stdin is never read implicitly (it would wait for typing). */
  stdinIsTty?: boolean;
  /** Standard input is the null device: it holds nothing, so no stream need be made to read it. */
  stdinIsNull?: boolean;
  /**
   * Why standard input cannot be read, when that shows without reading it (FILE_ACCESS: a
   * directory, a descriptor open only for writing); undefined when it may be read.
   */
  stdinUnreadable?: GaxxError | undefined;
  /** The file standard input reads, when it has a name (not a pipe): named when a read of it fails (stdinReadError). */
  stdinFile?: string | undefined;
  /** Colour output: stdout is a terminal that is not dumb and NO_COLOR is unset or empty (cli/terminal.ts). */
  colour?: boolean;
  /** stdout, stderr are terminals (of any kind): a task's output shown there has its control characters escaped. */
  stdoutIsTty?: boolean;
  stderrIsTty?: boolean;
  /**
   * Resolves once stdout has written out all it buffers, or failed (its reader gone), and that
   * failure has been handled as a stop (main.ts streamFailed); absent where nothing is buffered
   * beyond what a write hands over (captured streams).
   */
  stdoutFlushed?: () => Promise<void>;
}

/** A column of a human table. */
export interface Column<T> {
  header: string;
  get: (row: T) => string;
}

/** Human vs JSON output for one command invocation. */
export class Output {
  constructor(
    readonly io: Io,
    readonly json: boolean,
  ) {}

  /**
   * Prints the command's result: `value` as JSON with --json, else the human text, its control
   * characters escaped (names, errors and ids in it may come from Redis, an agent or a provider).
   */
  result(value: unknown, human: () => string): void {
    if (this.json) this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    else {
      const text = printableLines(human());
      if (text !== '') this.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  }

  /** A diagnostic line on stderr (shown in both modes; never a result), its control characters escaped. */
  note(message: string): void {
    this.io.stderr.write(`${printableLines(message)}\n`);
  }

  /** Raw output bytes (e.g. a remote command's stdout), unchanged. */
  writeOut(data: Buffer | string): void {
    this.io.stdout.write(data);
  }

  /** Raw diagnostic bytes (e.g. a remote command's stderr), unchanged. */
  writeErr(data: Buffer | string): void {
    this.io.stderr.write(data);
  }

  /**
   * Resolves once stdout and stderr have written out what they buffer beyond their high-water
   * mark (at once when neither has): a command that streams results awaits it between reads, so
   * a slow reader of its output holds it back instead of having it buffer everything.
   */
  drained(): Promise<void> {
    const waits = [this.io.stdout, this.io.stderr]
      .filter((s) => s.writableNeedDrain)
      .map(
        (s) =>
          new Promise<void>((resolve) => {
            const done = (): void => {
              for (const e of ['drain', 'close', 'error']) s.off(e, done);
              resolve();
            };
            for (const e of ['drain', 'close', 'error']) s.once(e, done);
          }),
      );
    return waits.length === 0 ? Promise.resolve() : Promise.all(waits).then(() => undefined);
  }

  /**
   * Resolves once stdout holds nothing unwritten (Io.stdoutFlushed). A command that says what a
   * stop did (a run: Command.saysStop) awaits it before it says so: a reader that leaves while
   * the last results wait in this process's buffer is then a stop the command sees and names, as
   * it is while results are printed, not an end in the exit's flush that says nothing. `until`:
   * resolves at once on a stop too (a reader that stays but reads nothing holds no stop back).
   */
  async flushed(until?: AbortSignal): Promise<void> {
    await raceAbort(this.io.stdoutFlushed?.() ?? Promise.resolve(), [until]);
  }

  /** Starts a progress display for long work; a no-op unless stderr is a live terminal (Io.stderrLive). */
  progress(label: string): Progress {
    return new Progress(this.io, label);
  }
}

/** One updatable status line on a terminal's stderr (none on a dumb terminal or a file). */
export class Progress {
  private readonly started = Date.now();
  private active: boolean;

  constructor(
    private readonly io: Io,
    private readonly label: string,
  ) {
    this.active = io.stderrLive;
    this.update('');
  }

  /**
   * Redraws the line with `detail`, cut to the terminal's width as it is now (a line that
   * wrapped would leave a row behind at every redraw): the time is left off first, then the
   * detail cut.
   */
  update(detail: string): void {
    if (!this.active) return;
    const secs = ((Date.now() - this.started) / 1000).toFixed(1);
    const room = lineRoom((this.io.stderr as { columns?: number }).columns);
    this.io.stderr.write(`\r\x1b[2K${fitParts([`${this.label}${detail ? `: ${printable(detail)}` : ''}`, ` (${secs}s)`], room)}`);
  }

  /** Clears the line; later output starts on a clean line. */
  done(): void {
    if (!this.active) return;
    this.io.stderr.write('\r\x1b[2K');
    this.active = false;
  }
}

/**
 * Renders rows as an aligned plain-text table. Every cell is made printable (proto/printable.ts):
 * cells show names and messages that come from Redis or agents, never raw control characters.
 */
export function renderTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = [columns.map((c) => c.header), ...rows.map((r) => columns.map((c) => printable(c.get(r))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}
