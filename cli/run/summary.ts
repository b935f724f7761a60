/**
 * A run's tally and exit code, shared by `gaxx run`, `gaxx runs wait` and `gaxx runs show`.
 *
 * Exit codes: 0 every task succeeded; 1 some command failed, timed out or was killed, or some
 * task-list record was refused (it could not become a task: an input problem); 12
 * (UNAVAILABLE) some task was unreachable (it never ran), ended in an error (the scheduler or
 * an agent refused it) or has an unknown outcome (it may have run, its end was lost):
 * infrastructure; or a task list was interrupted (its gaxx run died before enqueueing all its
 * input: those records never ran); 13 a wait timed out; 130 the run was cancelled; 2 usage; a run
 * that failed, the code of its failure (3, FILE_ACCESS: its task list could not be read). A run that ran to its end but whose
 * results were not all written to `--results` exits 3 (FILE_ACCESS) whatever its tasks' outcomes
 * (70, INTERNAL, when a result could not be shown): what the tasks did is then not all where it
 * was asked for.
 */
import { counted, exitCodeFor, printable, type ErrorCode } from '../../proto/index.js';
import type { OutcomeCounts, RunFailure, RunState, TaskOutcome } from '../../scheduler/index.js';
import type { RunTimings } from './timings.js';

/**
 * The outcome groups people read: failed covers killed; unreachable (never ran), errors and
 * unknown (may have run, its end lost) are counted apart, as each says something else.
 */
export interface RunSummary {
  runId: string;
  total: number;
  succeeded: number;
  failed: number;
  timedOut: number;
  /** Tasks that never ran: no agent could be reached. */
  unreachable: number;
  /** Tasks the scheduler or an agent ended with an error (a refusal, no agent for them, ...). */
  errors: number;
  /** Tasks that may have run but whose end was lost (outcome `unknown`). */
  unknown: number;
  cancelled: number;
  /** Task-list records that could not become a task (never queued nor run). */
  refused: number;
  /**
   * Tasks whose output was cut, whatever their outcome: stopped at their output cap, or not
   * stored over the run's output budget (their result says `truncated` and why).
   */
  outputCut: number;
  /**
   * How the run stands: done, cancelled, interrupted (its gaxx run died before enqueueing all its
   * input), running (the wait ended early: tasks without a result stay queued), failed, lost
   * (Redis lost the run's records: nothing of it is left to wait for or resume).
   */
  state: SummaryState;
  /** When the input was not all enqueued: the first record never enqueued (it and every later one never ran). */
  notEnqueuedFrom?: number;
  /** Why the run failed (state failed): e.g. its task list could not be read to its end (FILE_ACCESS). */
  failure?: RunFailure;
  /** Tasks whose `--results` folder could not be written (a full disk...): their results are in Redis only. */
  resultsNotWritten?: number;
  /** Tasks whose result could not be shown on stdout (a view that failed). */
  resultsNotShown?: number;
  durationMs: number;
  counts: OutcomeCounts;
  /** Hosts some task could not reach (its outcome `unreachable`). */
  unreachableHosts: string[];
  /** Where the time went (`gaxx run --timings`). */
  timings?: RunTimings;
}

/** How a run stands in its summary: its record's state, or `lost` (see RunSummary.state). */
export type SummaryState = RunState | 'lost';

/**
 * The state of a run whose wait ended early (`ended`): `lost` when Redis lost the run's records
 * (REDIS_DATA_LOST: none of its tasks is queued any more), else `running` (its tasks without a
 * result stay queued, and the run can be waited for again).
 */
export function endedState(ended: { code: ErrorCode }): SummaryState {
  return ended.code === 'REDIS_DATA_LOST' ? 'lost' : 'running';
}

/** How a run ended, for its summary. */
export interface RunEnd {
  state: SummaryState;
  notEnqueuedFrom?: number;
  failure?: RunFailure | undefined;
  /** Tasks whose output was cut (RunSummary.outputCut). */
  outputCut?: number;
  /** What the run's views missed (Views.missed). */
  resultsNotWritten?: number;
  resultsNotShown?: number;
}

/** The summary of `counts`. */
export function summarize(
  runId: string,
  counts: OutcomeCounts,
  durationMs: number,
  unreachable: Iterable<string> = [],
  end: RunEnd = { state: 'done' },
): RunSummary {
  const c = (o: TaskOutcome): number => counts[o] ?? 0;
  return {
    runId,
    total: Object.values(counts).reduce((n, v) => n + (v ?? 0), 0),
    succeeded: c('succeeded'),
    failed: c('failed') + c('killed'),
    timedOut: c('timeout'),
    unreachable: c('unreachable'),
    errors: c('error'),
    unknown: c('unknown'),
    cancelled: c('cancelled'),
    refused: c('refused'),
    outputCut: end.outputCut ?? 0,
    state: end.state,
    ...(end.notEnqueuedFrom !== undefined ? { notEnqueuedFrom: end.notEnqueuedFrom } : {}),
    ...(end.failure ? { failure: end.failure } : {}),
    ...(end.resultsNotWritten ? { resultsNotWritten: end.resultsNotWritten } : {}),
    ...(end.resultsNotShown ? { resultsNotShown: end.resultsNotShown } : {}),
    durationMs,
    counts,
    unreachableHosts: [...new Set(unreachable)].sort(),
  };
}

/** Why a run's tally is not the whole run: its task list was interrupted (see the exit codes above). */
export const INTERRUPTED = { code: 'UNAVAILABLE' } as const;

/**
 * What a failed run says after its summary: why (as its record keeps it), and which records never
 * ran (`notEnqueuedFrom`).
 */
/** A cancelled run's last note: what of a task list's input was never enqueued, when it was not all read. */
export function cancelledNote(runId: string, notEnqueuedFrom?: number): string {
  return `gaxx: run ${runId} cancelled${notEnqueuedFrom !== undefined ? `; records from ${notEnqueuedFrom} on were never enqueued` : ''}`;
}

export function failedNote(runId: string, failure: RunFailure, notEnqueuedFrom?: number): string {
  const rest = notEnqueuedFrom !== undefined ? `; records from ${notEnqueuedFrom} on were never enqueued` : '';
  return `gaxx: run ${runId} failed: ${failure.message} [${failure.code}]${rest}`;
}

/** Whether a result's output was cut (its output cap, the run's output budget) or it carries an error: it gets a line of its own in human output. */
export function needsResultLine(r: { outcome: string; truncated: boolean; error?: string | undefined }): boolean {
  return r.outcome !== 'succeeded' || r.truncated || Boolean(r.error);
}

/**
 * Adds a result's host to the run's unreachable hosts when its agent could not be reached: its
 * outcome is `unreachable` (never started there), or `unknown` for UNAVAILABLE (it started there,
 * then the agent went away and its end was lost).
 */
export function noteUnreachable(down: Set<string>, r: { host: string; outcome: string; reason: string }): void {
  if (!r.host) return;
  if (r.outcome === 'unreachable' || (r.outcome === 'unknown' && r.reason === 'UNAVAILABLE')) down.add(r.host);
}

/**
 * The process exit code for a finished (or cancelled) run. Output cut by the run's output budget
 * does not change it: the tasks' outcomes do (a task stopped at its output cap is `killed`: 1).
 * Such a run is counted in the summary ("N with output cut") and each such task has its line.
 * `ended`: why the wait stopped early (or INTERRUPTED).
 */
export function summaryExitCode(s: RunSummary, cancelled: boolean, ended?: { code: ErrorCode }): number {
  if (cancelled) return exitCodeFor('CANCELLED');
  if (ended) return exitCodeFor(ended.code);
  if (s.failure) return exitCodeFor(s.failure.code);
  if (s.resultsNotWritten) return exitCodeFor('FILE_ACCESS');
  if (s.resultsNotShown) return exitCodeFor('INTERNAL');
  if (s.unreachable + s.errors + s.unknown > 0) return exitCodeFor('UNAVAILABLE');
  return s.succeeded === s.total ? 0 : 1;
}

/** The one human summary line (run id and host names printable: they may come from Redis). */
export function summaryText(s: RunSummary): string {
  const secs = (s.durationMs / 1000).toFixed(1);
  const parts = [`${s.succeeded} succeeded`, `${s.failed} failed`, `${s.timedOut} timed out`];
  if (s.unreachable) parts.push(`${s.unreachable} unreachable`);
  if (s.errors) parts.push(counted(s.errors, 'error'));
  parts.push(`${s.unknown} unknown`);
  if (s.cancelled) parts.push(`${s.cancelled} cancelled`);
  if (s.refused) parts.push(`${s.refused} refused`);
  if (s.outputCut) parts.push(`${s.outputCut} with output cut`);
  if (s.resultsNotWritten) parts.push(`${s.resultsNotWritten} not written to --results`);
  if (s.resultsNotShown) parts.push(`${s.resultsNotShown} not shown`);
  const down = s.unreachableHosts.length ? `\ngaxx: unreachable: ${printable(s.unreachableHosts.join(', '))}` : '';
  return `gaxx: run ${printable(s.runId)}: ${counted(s.total, 'task')}: ${parts.join(', ')} in ${secs} s${down}`;
}
