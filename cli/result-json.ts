/**
 * The one JSON shape of a task's result, for `gaxx exec --json` and `gaxx run --json` alike:
 * the scheduler's TaskResult fields plus the output. Output that is valid UTF-8 is a string
 * (`stdout`, `stderr`); anything else is kept exact as base64 (`stdoutBase64`, `stderrBase64`).
 * And a run's record as `gaxx runs` prints it. Times are ISO 8601 strings in every command's JSON
 * (`finishedAt`, `createdAt`, `notAfter`...); durations are numbers named for their unit (`durationMs`).
 */
import type { Exit__Output } from '../proto/index.js';
import { outcomeOf, outputBytes } from '../scheduler/client/index.js';
import type { OutputChunk, RunRecord, TaskResult } from '../scheduler/index.js';

/** `bytes` as `{NAME: text}` when it is UTF-8, else `{NAMEBase64: ...}`. */
function outputField(name: 'stdout' | 'stderr', bytes: Buffer): Record<string, string> {
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? { [name]: text } : { [`${name}Base64`]: bytes.toString('base64') };
}

/** A task result with its output, as one JSON-ready object. */
export function taskResultJson(r: TaskResult, output: readonly OutputChunk[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  const bytes = (s: 1 | 2): Buffer => Buffer.concat(output.filter((c) => c.stream === s).map((c) => c.data));
  return { ...r, ...extra, ...outputField('stdout', bytes(1)), ...outputField('stderr', bytes(2)) };
}

/** The outcome fields of a TaskResult, which a direct Exec's end gives. */
type ExecEnd = Pick<
  TaskResult,
  'outcome' | 'exitCode' | 'signal' | 'reason' | 'error' | 'durationMs' | 'stdoutBytes' | 'stderrBytes' | 'truncated' | 'outputCapped'
>;

/** A direct Exec's result: `end`, with what every one says alike (no run, `runId` empty; one attempt, on `host`). */
function directExec(taskId: string, host: string, started: { attached: boolean; replayed: boolean }, end: ExecEnd): TaskResult {
  return {
    runId: '',
    taskId,
    host,
    ...end,
    attempts: 1,
    startedOn: [host],
    outputLost: false,
    mayHaveRepeated: false,
    attached: started.attached,
    replayed: started.replayed,
    finishedAt: new Date().toISOString(),
  };
}

/**
 * A direct Exec whose stream broke after the agent said Started: it ran there, its end is
 * unknown (`error` says why), as `gaxx run` reports a task whose agent went away. Its duration is
 * the time it was seen running (from Started, `seenMs`; 0 when no Started came), and its byte
 * counts those of the output that came.
 */
export function lostExecResult(
  taskId: string,
  host: string,
  started: { attached: boolean; replayed: boolean },
  error: string,
  seen: { ms: number; output: readonly OutputChunk[] },
): TaskResult {
  return directExec(taskId, host, started, {
    outcome: 'unknown',
    exitCode: null,
    signal: null,
    reason: 'UNAVAILABLE',
    error,
    durationMs: seen.ms,
    stdoutBytes: outputBytes(seen.output, 1),
    stderrBytes: outputBytes(seen.output, 2),
    truncated: false,
    outputCapped: false,
  });
}

/** A direct Exec's end as a TaskResult. */
export function execTaskResult(taskId: string, host: string, exit: Exit__Output, started: { attached: boolean; replayed: boolean }): TaskResult {
  return directExec(taskId, host, started, {
    outcome: outcomeOf(exit),
    exitCode: exit.signal ? null : exit.code,
    signal: exit.signal || null,
    reason: exit.reason || '',
    ...(exit.error ? { error: exit.error } : {}),
    durationMs: Number(exit.durationMs),
    stdoutBytes: Number(exit.stdoutBytes),
    stderrBytes: Number(exit.stderrBytes),
    truncated: exit.truncated,
    outputCapped: exit.outputCapped,
  });
}

/**
 * A run's record as `gaxx runs --json` and `gaxx runs show --json` print it, in `state` (as shown:
 * settleRunRecord's): its times (`startedAt`, `seen`, the last sign of life of whoever follows it, and
 * `finishedAt`) as ISO strings, as every command gives times, not the Unix ms the run index keeps;
 * null for a time it does not have.
 */
export function runRecordJson(r: RunRecord, state: string): Record<string, unknown> {
  const iso = (ms: number | null): string | null => (ms ? new Date(ms).toISOString() : null);
  return { ...r, state, startedAt: iso(r.startedAt), seen: iso(r.seen), finishedAt: iso(r.finishedAt) };
}
