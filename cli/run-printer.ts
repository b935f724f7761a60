/**
 * Human output of `gaxx run`: each task's output as it arrives (live), then a summary line per
 * task when its result comes. With several hosts, every output line is prefixed with its host
 * (partial lines are held until their newline or the task's end, so hosts never interleave
 * inside a line) and its control characters shown escaped (printableOutputLine). With one host,
 * output passes through unchanged, as its bytes, to a pipe or a file; to a terminal its lines get
 * the same escaping (without the label): a task's output is the host's to choose, and a
 * compromised host must not reach the operator's terminal with escape sequences (a clipboard
 * write, a title, the cursor moved over gaxx's own lines). `gaxx exec` streams raw (cli/commands/exec.ts).
 */
import { printable, printableOutputLine } from '../proto/index.js';
import type { OutputChunk, TaskResult } from '../scheduler/index.js';
import type { Output } from './output.js';

/**
 * What a result says of its output cap: a task the agent stopped there (reason `output_cap`,
 * outcome killed), or one that ended on its own with its output past the cap (its outcome its
 * own, its output cut all the same); '' when the cap played no part.
 */
export function capNote(r: Pick<TaskResult, 'reason' | 'outputCapped'>): string {
  if (r.reason === 'output_cap') return 'stopped at the output cap (--output-cap), output truncated';
  return r.outputCapped ? 'output truncated at the cap (--output-cap)' : '';
}

/**
 * The summary line of a finished task. Its fields are made printable (proto/printable.ts): a
 * result is read from Redis, and its host, reason or error must not reach a terminal as control
 * characters. `label`: what names the task (default its host), already printable.
 */
export function summaryLine(r: TaskResult, label = printable(r.host)): string {
  const how = r.signal ? `signal ${r.signal}` : r.exitCode !== null ? `exit ${r.exitCode}` : r.reason;
  const extra = [
    r.reason && r.exitCode !== null && r.reason !== 'output_cap' ? r.reason : '',
    // The agent stops a task at its output cap: said, so that `killed` is not a mystery; and so is
    // output cut at the cap of a task that ended on its own first.
    capNote(r) || (r.truncated ? 'output truncated' : ''),
    r.attempts > 1 ? `${r.attempts} attempts` : '',
    // Where it was seen starting; agents it may only have reached are named by its error.
    r.mayHaveRepeated ? `may have run more than once${r.startedOn?.length ? ` (started on ${r.startedOn.join(', ')})` : ''}` : '',
    r.error ?? '',
  ]
    .filter(Boolean)
    .join(', ');
  return `== ${label}: ${r.outcome} (${printable(how)}, ${r.durationMs} ms${extra ? `; ${printable(extra)}` : ''})\n`;
}

/** Prints a run's live output and results for people. */
export class HumanRunPrinter {
  /** Held partial lines by task and stream. */
  private readonly partial = new Map<string, Buffer>();
  private readonly shownLive = new Set<string>();
  /** With one host, the task streams whose output so far ends inside a line. */
  private readonly unterminated = new Set<string>();

  constructor(
    private readonly out: Output,
    /** Host of each task id (printable, maybe coloured: it prefixes output lines). */
    private readonly hosts: ReadonlyMap<string, string>,
    /** The same hosts, printable and plain: they name each task's result line as its output lines. */
    private readonly names: ReadonlyMap<string, string> = hosts,
  ) {}

  private get prefixed(): boolean {
    return this.hosts.size > 1;
  }

  /** Which of stdout (1) and stderr (2) are terminals, asked once. */
  private terminals: { 1: boolean; 2: boolean } | undefined;

  /** Output of `stream` is held to whole lines and escaped: with several hosts, or to a terminal. */
  private linewise(stream: 1 | 2): boolean {
    this.terminals ??= { 1: this.out.io.stdoutIsTty === true, 2: this.out.io.stderrIsTty === true };
    return this.prefixed || this.terminals[stream];
  }

  /** What starts each output line of a task: its host with several, nothing with one. */
  private label(taskId: string): string {
    return this.prefixed ? `${this.hosts.get(taskId) ?? taskId}: ` : '';
  }

  /** A chunk of a running task's output. */
  live(taskId: string, c: OutputChunk): void {
    this.shownLive.add(taskId);
    this.write(taskId, c);
  }

  /** A task's result, with its full output (printed unless the live view already showed it). */
  result(r: TaskResult, output: OutputChunk[], liveShown: boolean): void {
    this.endLines(r.taskId);
    // Named as its output lines are (a fleet's host name), not by the agent address it ran at.
    const name = this.names.get(r.taskId) ?? printable(r.host);
    if (!liveShown && output.length > 0) {
      if (this.shownLive.has(r.taskId)) this.out.writeOut(`== ${name}: output in full (the live view was incomplete)\n`);
      for (const c of output) this.write(r.taskId, c);
      this.endLines(r.taskId);
    }
    this.out.writeOut(summaryLine(r, name));
  }

  private write(taskId: string, c: OutputChunk): void {
    const sink = (data: Buffer | string): void => (c.stream === 1 ? this.out.writeOut(data) : this.out.writeErr(data));
    const key = `${taskId}\u0000${c.stream}`;
    if (!this.linewise(c.stream)) {
      sink(c.data);
      if (c.data.length > 0 && c.data[c.data.length - 1] !== 10) this.unterminated.add(key);
      else if (c.data.length > 0) this.unterminated.delete(key);
      return;
    }
    let buf = Buffer.concat([this.partial.get(key) ?? Buffer.alloc(0), c.data]);
    const label = this.label(taskId);
    for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10)) {
      sink(Buffer.concat([Buffer.from(label), printableOutputLine(buf.subarray(0, nl + 1))]));
      buf = buf.subarray(nl + 1);
    }
    this.partial.set(key, buf);
  }

  /**
   * Ends a task's held partial lines (a last line without a newline gets one); with one host, its
   * output passed through, ends its last line, so that no summary line is glued to it.
   */
  private endLines(taskId: string): void {
    const label = this.label(taskId);
    for (const stream of [1, 2] as const) {
      const key = `${taskId}\u0000${stream}`;
      if (this.unterminated.delete(key)) {
        if (stream === 1) this.out.writeOut('\n');
        else this.out.writeErr('\n');
      }
      const rest = this.partial.get(key);
      this.partial.delete(key);
      if (!rest || rest.length === 0) continue;
      const line = Buffer.concat([Buffer.from(label), printableOutputLine(rest), Buffer.from('\n')]);
      if (stream === 1) this.out.writeOut(line);
      else this.out.writeErr(line);
    }
  }
}
