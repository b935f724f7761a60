/**
 * How `gaxx run` (and `gaxx runs wait/show`) present results: people get output prefixed by
 * host and task (coloured as cli/terminal.ts decides), scripts get JSON Lines with the run
 * id first and a summary last, and `--results DIR` gets files. Output is written as is to
 * files and to a one-host run's terminal, base64 in JSON (`stdoutBase64` instead of `stdout`);
 * lines labelled with their host show their control characters escaped (printableOutputLine).
 */
import { printable, printableOutputLine, type GaxxError } from '../../proto/index.js';
import type { OutputChunk, TaskResult } from '../../scheduler/index.js';
import type { Output } from '../output.js';
import { taskResultJson } from '../result-json.js';
import { HumanRunPrinter, summaryLine } from '../run-printer.js';
import type { ProgressLine } from './progress.js';
import { needsResultLine, summaryText, type RunSummary } from './summary.js';
import { ViewFailures, type ViewLabel } from './view-failures.js';

/** What the run is, for the first JSON line. */
export interface RunHeader {
  runId: string;
  argv: string[];
  fleet: string;
  mode: 'each-host' | 'tasks';
}

/** One presentation of a run. */
export interface RunView {
  /** Which it is, in what is said about its failures (view-failures.ts). */
  readonly label: ViewLabel;
  start(h: RunHeader): void;
  live(taskId: string, c: OutputChunk): void;
  /**
   * `input`: the task's record, when known. `pending`: no result of the task came (the wait
   * ended early, or a cancel's grace passed): `r` only says so. `unnamed`: a shown run's task
   * whose record could not be read (Redis gone, or it expired): why.
   */
  result(r: TaskResult, output: OutputChunk[], liveShown: boolean, input: string | undefined, pending?: boolean, unnamed?: GaxxError): void;
  end(s: RunSummary): void;
  /** The command that gives what this view missed of run `runId` (said after the summary when it missed some). */
  completeWith?(runId: string): string;
}

const COLOURS = [36, 33, 35, 32, 34, 96, 93, 95];

function colourOf(host: string): number {
  let h = 0;
  for (let i = 0; i < host.length; i++) h = (h * 31 + host.charCodeAt(i)) >>> 0;
  return COLOURS[h % COLOURS.length] as number;
}

/** `text` in the host's colour (when colour is on). */
export function paint(text: string, host: string, colour: boolean): string {
  return colour ? `\x1b[${colourOf(host)}m${text}\x1b[0m` : text;
}

/** Human output. Each-host runs stream live (HumanRunPrinter); task runs print each task's output as one group when it ends, so concurrent tasks never interleave. */
export class HumanView implements RunView {
  readonly label = 'output';
  private each: HumanRunPrinter | undefined;

  constructor(
    private readonly out: Output,
    private readonly opts: {
      colour: boolean;
      progress?: ProgressLine;
      eachHostLabels?: ReadonlyMap<string, string>;
      /** A fleet's host names by agent address: a task list's output is labelled by them. */
      hostNames?: ReadonlyMap<string, string>;
    },
  ) {
    if (opts.eachHostLabels) {
      const plain = new Map([...opts.eachHostLabels].map(([id, host]) => [id, printable(host)]));
      const painted = new Map([...opts.eachHostLabels].map(([id, host]) => [id, paint(printable(host), host, opts.colour)]));
      this.each = new HumanRunPrinter(out, painted, plain);
    }
  }

  /** The run id first, on stderr: a killed `gaxx run` can be resumed (`gaxx run --resume ID`). */
  start(h: RunHeader): void {
    this.out.note(`gaxx: run ${h.runId}`);
  }

  live(taskId: string, c: OutputChunk): void {
    this.opts.progress?.hide();
    this.each?.live(taskId, c);
  }

  result(r: TaskResult, output: OutputChunk[], liveShown: boolean): void {
    this.opts.progress?.hide();
    if (this.each) return this.each.result(r, output, liveShown);
    // The host and task id are metadata read from Redis: printable; the output after them is the task's bytes.
    const host = this.opts.hostNames?.get(r.host) ?? r.host;
    const label = `${paint(printable(host) || '-', host, this.opts.colour)} [${printable(r.taskId)}]`;
    for (const stream of [1, 2] as const) {
      const data = Buffer.concat(output.filter((c) => c.stream === stream).map((c) => c.data));
      if (data.length === 0) continue;
      const lines: Buffer[] = [];
      let start = 0;
      for (let nl = data.indexOf(10); nl !== -1; nl = data.indexOf(10, start)) {
        lines.push(Buffer.from(`${label}: `), printableOutputLine(data.subarray(start, nl + 1)));
        start = nl + 1;
      }
      if (start < data.length) lines.push(Buffer.from(`${label}: `), printableOutputLine(data.subarray(start)), Buffer.from('\n'));
      if (stream === 1) this.out.writeOut(Buffer.concat(lines));
      else this.out.writeErr(Buffer.concat(lines));
    }
    // A task that succeeded is quiet, unless its output was cut (over the run's output budget, or
    // at its output cap) or it carries an error: what is missing is said where it would be.
    if (needsResultLine(r)) {
      const line = summaryLine(r, `${printable(host) || '-'} [${printable(r.taskId)}]`);
      const colour = r.outcome === 'succeeded' ? 33 : 31;
      this.out.writeOut(this.opts.colour ? `\x1b[${colour}m${line.trimEnd()}\x1b[0m\n` : line);
    }
  }

  end(s: RunSummary): void {
    this.opts.progress?.stop();
    this.out.note(summaryText(s));
  }
}

/** JSON Lines: `{"type":"run",...}` first, `{"type":"task",...}` per task, `{"type":"summary",...}` last. */
export class JsonView implements RunView {
  readonly label = 'output';

  constructor(private readonly out: Output) {}

  start(h: RunHeader): void {
    this.out.writeOut(`${JSON.stringify({ type: 'run', ...h })}\n`);
  }

  live(): void {}

  result(r: TaskResult, output: OutputChunk[], _liveShown: boolean, input: string | undefined): void {
    // The one task JSON shape (as gaxx exec --json): `stdout` text, or `stdoutBase64` when not UTF-8.
    const task = { type: 'task', ...taskResultJson(r, output, input !== undefined ? { input } : {}) };
    this.out.writeOut(`${JSON.stringify(task)}\n`);
  }

  end(s: RunSummary): void {
    this.out.writeOut(`${JSON.stringify({ type: 'summary', ...s })}\n`);
  }
}

/**
 * The view of a run recorded before (`gaxx runs wait`, `gaxx run --resume`): JSON Lines, or
 * human output as the run's own `gaxx run` printed it, a run of one task per host with its
 * hosts' labels (`hosts`, when the run still has them), a fleet's task list labelled with its
 * host names (`hostNames`, by agent address); and its `--results` folders (`results`).
 */
export function recordedRunView(
  out: Output,
  colour: boolean,
  hosts?: ReadonlyMap<string, string>,
  hostNames?: ReadonlyMap<string, string>,
  results?: RunView,
): Views {
  const human = { colour, ...(hosts?.size ? { eachHostLabels: hosts } : {}), ...(hostNames?.size ? { hostNames } : {}) };
  const view = out.json ? new JsonView(out) : new HumanView(out, human);
  return new Views(results ? [view, results] : [view], out);
}

/**
 * Several views as one, and the only way a run reaches them: a view that throws (a full
 * `--results` disk) is told and counted (ViewFailures), never passed on, so it can neither unwind
 * the run nor change what the run records; the others still get every result. Its end shows
 * the summary, then for each view that missed results how many and how to get them.
 */
export class Views implements RunView {
  readonly label = 'output';
  private readonly failures: ViewFailures;
  private runId = '';

  constructor(
    private readonly views: RunView[],
    out: Pick<Output, 'note'>,
  ) {
    this.failures = new ViewFailures((text) => out.note(text));
  }

  start(h: RunHeader): void {
    this.runId = h.runId;
    this.each(undefined, (v) => v.start(h));
  }
  live(taskId: string, c: OutputChunk): void {
    this.each(undefined, (v) => v.live(taskId, c));
  }
  result(r: TaskResult, output: OutputChunk[], liveShown: boolean, input: string | undefined, pending = false, unnamed?: GaxxError): void {
    this.each(r.taskId, (v) => v.result(r, output, liveShown, input, pending, unnamed));
  }
  end(s: RunSummary): void {
    this.each(undefined, (v) => v.end(s));
    const runId = this.runId || s.runId;
    const fixes = new Map(this.views.flatMap((v) => (v.completeWith ? [[v.label, v.completeWith(runId)] as const] : [])));
    for (const line of this.failures.closing(runId, fixes)) this.failures.note(line);
  }

  /** What the views missed, for the run's summary (RunEnd). */
  missed(): { resultsNotWritten: number; resultsNotShown: number } {
    return { resultsNotWritten: this.failures.count('--results'), resultsNotShown: this.failures.count('output') };
  }

  private each(taskId: string | undefined, call: (v: RunView) => void): void {
    for (const v of this.views) {
      try {
        call(v);
      } catch (e) {
        this.failures.failed(v.label, taskId, e);
      }
    }
  }
}
