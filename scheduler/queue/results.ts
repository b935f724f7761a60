/**
 * Task results and the per-run Redis stream they are published to.
 *
 * Stream `{gaxx}:run:<runId>:events` (MAXLEN ~ bounded, TTL refreshed on each write) holds, per
 * task, its output chunks (`t=out`, `s=1|2`, `d=bytes`) followed by its result (`t=res`,
 * `r=json`). A Lua script publishes a task's entries only if `{gaxx}:run:<runId>:done` has no
 * result for it yet, so a job re-dispatched after a scheduler crash (its agent replaying the
 * stored result) never shows up twice. `waitForRun` reads the stream until every task has a result.
 * Live output entries (`t=live`, see live.ts) may come before; the result entry says how many
 * bytes of them were exactly the output's start (`lb`), so a reader that showed them need not
 * show the output again.
 */
import type { Cluster, Redis } from 'ioredis';
import { GaxxError } from '../../proto/index.js';
import { duplicateFor, gaxxKey, redisError, waitReady } from '../redis/redis.js';

/** How a task ended. Only `succeeded` counts as success. */
export type TaskOutcome = 'succeeded' | 'failed' | 'timeout' | 'cancelled' | 'killed' | 'unreachable' | 'error';

/** One task's result, as published and returned by waitForRun. */
export interface TaskResult {
  runId: string;
  taskId: string;
  /** Agent address the task ran on (the last one tried when it never ran). */
  host: string;
  outcome: TaskOutcome;
  exitCode: number | null;
  signal: string | null;
  /** The agent's reason for ending it (timeout, output_cap, ...) or the failure's code. */
  reason: string;
  /** Human explanation for `error` / `unreachable` outcomes. */
  error?: string;
  durationMs: number;
  stdoutBytes: number;
  stderrBytes: number;
  truncated: boolean;
  /** Dispatches made for this task (1 when nothing went wrong). */
  attempts: number;
  /** The agent attached to / replayed an execution an earlier dispatch started. */
  attached: boolean;
  replayed: boolean;
  finishedAt: string;
}

/** One output chunk: 1 = stdout, 2 = stderr. */
export interface OutputChunk {
  stream: 1 | 2;
  data: Buffer;
}

export const STREAM_MAXLEN = 500_000;
export const RESULT_TTL_MS = 24 * 3600 * 1000;
const ENTRY_BYTES = 64 * 1024;

export const runEventsKey = (runId: string): string => gaxxKey('run', runId, 'events');
export const runDoneKey = (runId: string): string => gaxxKey('run', runId, 'done');

export { outcomeOf } from '../client/outcome.js';

const PUBLISH = `
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[4]) == 0 then return 0 end
for i = 6, #ARGV, 2 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 't', 'out', 'task', ARGV[1], 's', ARGV[i], 'd', ARGV[i + 1])
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 't', 'res', 'task', ARGV[1], 'r', ARGV[4], 'lb', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`;

/**
 * Publishes a task's output and result once; false when it had been published already.
 * `exactLiveBytes`: the live output streamed before was exactly this many bytes of `output`'s
 * start (omit when it was not, or none was streamed).
 */
export async function publishResult(redis: Redis | Cluster, result: TaskResult, output: OutputChunk[], exactLiveBytes?: number): Promise<boolean> {
  const live = exactLiveBytes === undefined ? '-1' : String(exactLiveBytes);
  const args: Array<string | Buffer> = [result.taskId, String(STREAM_MAXLEN), String(RESULT_TTL_MS), JSON.stringify(result), live];
  for (const c of output) {
    for (let off = 0; off < c.data.length; off += ENTRY_BYTES) args.push(String(c.stream), c.data.subarray(off, off + ENTRY_BYTES));
  }
  const added = await redis.eval(PUBLISH, 2, runEventsKey(result.runId), runDoneKey(result.runId), ...args);
  return added === 1;
}

/** A finished run: results and output per task id. */
export interface RunResults {
  results: Map<string, TaskResult>;
  output: Map<string, OutputChunk[]>;
}

export interface WaitOptions {
  /** Give up (DEADLINE_EXCEEDED) after this long; no limit when absent. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Stop waiting and return the results collected so far (unlike `signal`, which throws). */
  until?: AbortSignal;
  /**
   * Called once per task as its result arrives, with its output; `liveShown` is true when the
   * live chunks passed to `onLive` were exactly that output (no need to show it again).
   */
  onResult?: (result: TaskResult, output: OutputChunk[], liveShown: boolean) => void;
  /** Called with a running task's output as it arrives (before its result). */
  onLive?: (taskId: string, chunk: OutputChunk) => void;
}

type StreamReply = Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;

function fieldsOf(flat: Buffer[]): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (let i = 0; i + 1 < flat.length; i += 2) m.set((flat[i] as Buffer).toString(), flat[i + 1] as Buffer);
  return m;
}

/** Reads the run's stream until every one of `taskIds` has a result. */
export async function waitForRun(redis: Redis | Cluster, runId: string, taskIds: readonly string[], opts: WaitOptions = {}): Promise<RunResults> {
  const want = new Set(taskIds);
  const out: RunResults = { results: new Map(), output: new Map() };
  const liveBytes = new Map<string, number>();
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  // Blocking reads get their own connection, so the caller's stays free; it rides out a Redis
  // restart (the results are in the AOF) instead of failing the wait.
  const reader = duplicateFor(redis, 'worker');
  reader.on('error', () => undefined);
  let last = '0';
  try {
    await waitReady(reader);
    while (out.results.size < want.size) {
      if (opts.until?.aborted) break;
      if (opts.signal?.aborted) throw new GaxxError('CANCELLED', 'stopped waiting for the run');
      const left = deadline - Date.now();
      if (left <= 0) throw new GaxxError('DEADLINE_EXCEEDED', `run ${runId}: ${want.size - out.results.size} of ${want.size} tasks had no result in time`);
      const block = Math.max(1, Math.min(1000, left));
      const reply = (await reader.xreadBuffer('COUNT', 1000, 'BLOCK', block, 'STREAMS', runEventsKey(runId), last)) as StreamReply;
      for (const [, entries] of reply ?? []) {
        for (const [id, flat] of entries) {
          last = id.toString();
          collect(fieldsOf(flat), want, out, opts, liveBytes);
        }
      }
    }
    return out;
  } catch (e) {
    throw redisError(e, `waiting for run ${runId}`);
  } finally {
    reader.disconnect();
  }
}

function collect(f: Map<string, Buffer>, want: Set<string>, out: RunResults, opts: WaitOptions, liveBytes: Map<string, number>): void {
  const task = f.get('task')?.toString() ?? '';
  if (!want.has(task) || out.results.has(task)) return;
  const type = f.get('t')?.toString();
  if (type === 'live') {
    const chunk: OutputChunk = { stream: f.get('s')?.toString() === '2' ? 2 : 1, data: f.get('d') ?? Buffer.alloc(0) };
    liveBytes.set(task, (liveBytes.get(task) ?? 0) + chunk.data.length);
    opts.onLive?.(task, chunk);
  } else if (type === 'out') {
    const chunks = out.output.get(task) ?? [];
    chunks.push({ stream: f.get('s')?.toString() === '2' ? 2 : 1, data: f.get('d') ?? Buffer.alloc(0) });
    out.output.set(task, chunks);
  } else if (type === 'res') {
    const r = JSON.parse(f.get('r')?.toString() ?? '{}') as TaskResult;
    out.results.set(task, r);
    const output = out.output.get(task) ?? [];
    const shown = liveBytes.get(task) ?? 0;
    // Shown exactly when the publishing worker vouches that its live bytes were the output's
    // start, the reader saw just those (no dead worker's, none trimmed), and that was all of it.
    const total = output.reduce((n, c) => n + c.data.length, 0);
    opts.onResult?.(r, output, Number(f.get('lb')?.toString() ?? '-1') === shown && shown === total);
  }
}
