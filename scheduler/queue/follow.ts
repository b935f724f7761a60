/**
 * Following a run's stream without knowing its task ids up front: a streamed run (tasks
 * enqueued in batches as input is read) or a run started elsewhere (`gaxx runs wait`). Every
 * result entry in a run's stream is a distinct task (results are published once per task, see
 * results.ts), so the follower counts results instead of holding a set of ids, and keeps a
 * task's output only until its result arrives: memory stays bounded by the tasks in flight.
 * It is the one reader of a run's stream: waitForRun (queue/wait.ts) follows a fixed set of
 * tasks through it. Result entries are checked as every reader checks them (stored-result.ts): one that is not a valid result of this run and of its
 * entry's task, or (with `accept`) not of a task the reader waits for, is skipped and reported
 * (`onIgnored`), never counted. A run's job that failed for good (its attempts ran out) has its
 * result published by the follower when it has none (failed-jobs.ts), so every run can end; and
 * a run whose records Redis lost (flushed, restarted without its data) ends the follow with
 * REDIS_DATA_LOST (run-presence.ts), as nothing of it can come back.
 */
import type { Cluster, Redis } from 'ioredis';
import { GaxxError, raceAbort } from '../../proto/index.js';
import { duplicateFor, redisError, waitReady } from '../redis/redis.js';
import { overBudget, runEventsKey, type OutputChunk, type TaskResult } from './results.js';
import { FailedSweep } from './failed-jobs.js';
import { RunPresence } from './run-presence.js';
import { readResult, type IgnoredHandler } from './stored-result.js';
import { Reachability, TICK_MS, type OnRedis } from './reachability.js';
import type { WriteHealth } from './write-health.js';

/** What a follower reports as entries arrive. */
export interface FollowHandlers {
  /**
   * Once per task, with its whole output; `liveShown`: the chunks passed to onLive were exactly that
   * output; `pending`: no result of the task came (the wait ended early, or a cancel's grace
   * passed), and `result` is the follower's report of that, not a result the run stores.
   */
  onResult?: (result: TaskResult, output: OutputChunk[], liveShown: boolean, pending?: boolean) => void;
  /** A running task's output as it arrives. */
  onLive?: (taskId: string, chunk: OutputChunk) => void;
  /** A word about a running task from its worker (an agent it waits for went away...): a diagnostic, not output. */
  onNote?: (taskId: string, text: string) => void;
  /** A result entry that was skipped (not a valid result of this run's task), with why. */
  onIgnored?: IgnoredHandler;
  /**
   * Awaited after each read's entries are handled, before the next read: a reader whose output
   * is backed up (a slow consumer of stdout) reads no more until it drains, so the run's results
   * wait in Redis rather than in this process (and a streamed run's window holds the producer).
   */
  paced?: () => Promise<void>;
}

/**
 * Which of a read's result entries are of tasks the reader waits for: called once per read with
 * the task ids of its valid result entries, in stream order (an id may repeat); one verdict each.
 */
export type AcceptResults = (taskIds: string[]) => boolean[] | Promise<boolean[]>;

export interface FollowOptions extends FollowHandlers {
  /** Absent: every valid result of the run counts. */
  accept?: AcceptResults;
  /** Checked after every read (at least every `pollMs`): true ends the follow. */
  done: (finished: number) => boolean;
  /** Stop following at once (no error). */
  until?: AbortSignal;
  /** DEADLINE_EXCEEDED after this long. */
  timeoutMs?: number;
  pollMs?: number;
  /** Redis went away (`down`, repeated about every 5 s with how long) or came back; with `refused`, it refuses writes (see WaitOptions). */
  onRedis?: OnRedis;
  /** REDIS_UNAVAILABLE when Redis stays unreachable, or refuses the run's writes, this long (default: no limit). */
  redisGoneMs?: number;
  /** Refusals of the run's writes reported by others (its in-process worker); the follower adds its own probe's. */
  writes?: WriteHealth;
  /**
   * How to tell that Redis lost the run (run-presence.ts; neither: not looked for): the tasks
   * still waited for (`outstanding`), asked about once Redis lost data, and (`registered`) the
   * run's registry entry and task list, asked at the start too.
   */
  outstanding?: () => Iterable<string>;
  registered?: boolean;
}

type StreamReply = Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;

/** One stream entry as read: its id, fields, and for a result entry the result or why it is skipped. */
interface Entry {
  id: string;
  f: Map<string, Buffer>;
  result?: { ok: true; result: TaskResult } | { ok: false; why: string };
}

/** A read's entries, each result entry checked (stored-result.ts, then `accept`). */
async function checked(runId: string, reply: StreamReply, accept: AcceptResults | undefined): Promise<Entry[]> {
  const entries: Entry[] = [];
  for (const [, got] of reply ?? []) {
    for (const [id, flat] of got) {
      const f = new Map<string, Buffer>();
      for (let i = 0; i + 1 < flat.length; i += 2) f.set((flat[i] as Buffer).toString(), flat[i + 1] as Buffer);
      const e: Entry = { id: id.toString(), f };
      if (f.get('t')?.toString() === 'res') e.result = readResult(f.get('r'), { runId, taskId: f.get('task')?.toString() ?? '' });
      entries.push(e);
    }
  }
  const valid = entries.filter((e) => e.result?.ok === true);
  if (accept && valid.length > 0) {
    const verdicts = await accept(valid.map((e) => e.f.get('task')?.toString() ?? ''));
    valid.forEach((e, i) => {
      if (verdicts[i] !== true) e.result = { ok: false, why: 'taskId: not a task of this run, or one that has its result' };
    });
  }
  return entries;
}

/**
 * Reads a run's stream from its start until `done` says so; resolves to the number of results
 * seen. Every wait is bounded: each read races the deadline, `until` and a
 * tick, because a read on a connection that is reconnecting never returns by itself.
 */
export async function followRun(redis: Redis | Cluster, runId: string, opts: FollowOptions): Promise<number> {
  const state = new FollowState(runId, opts);
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  const reader = duplicateFor(redis, 'worker');
  reader.on('error', () => undefined);
  const reach = new Reachability(reader, opts.onRedis, { redis, runId, ...(opts.writes ? { health: opts.writes } : {}) });
  // A task whose job failed for good gets its result here, else the run would never end.
  const sweep = new FailedSweep(redis, runId);
  // Nor would it once Redis lost the run's records: REDIS_DATA_LOST then (run-presence.ts).
  const presence = opts.outstanding || opts.registered ? new RunPresence(redis, runId, opts) : undefined;
  const stops = [opts.until];
  let last = '0';
  let pending: Promise<Entry[]> | undefined;
  try {
    const ready = waitReady(reader, Math.min(opts.redisGoneMs ?? 30_000, Math.max(1, deadline - Date.now())));
    if ((await raceAbort(ready, stops)) === 'stop') return state.finished;
    while (!opts.done(state.finished) && !opts.until?.aborted) {
      const left = deadline - Date.now();
      if (left <= 0) throw new GaxxError('DEADLINE_EXCEEDED', `run ${runId}: no more results in time (${state.finished} arrived)`);
      reach.check(opts.redisGoneMs, `while following run ${runId}`);
      const lost = presence?.lost();
      if (lost) throw lost;
      presence?.tick();
      sweep.tick();
      // One read at a time (see waitForRun): a read issued while Redis is away is raced again, never stacked.
      const block = Math.max(1, Math.min(opts.pollMs ?? 250, left));
      // The read and the check of its results are one step, raced as one. Only its failures are
      // Redis's: one of a handler (a view that cannot write) is not reported as Redis gone.
      pending ??= (reader.xreadBuffer('COUNT', 2000, 'BLOCK', block, 'STREAMS', runEventsKey(runId), last) as Promise<StreamReply>)
        .then((reply) => checked(runId, reply, opts.accept))
        .catch((e: unknown) => Promise.reject(redisError(e, `following run ${runId}`)));
      const got = await raceAbort(pending, stops, Math.min(block + TICK_MS, Math.max(1, left)));
      if (got === 'stop' || got === 'tick') continue;
      pending = undefined;
      const before = state.finished;
      for (const e of got) {
        last = e.id;
        state.entry(e);
      }
      if (state.finished > before) reach.landed();
      if (opts.paced && got.length > 0 && (await raceAbort(opts.paced(), stops)) === 'stop') continue;
    }
    return state.finished;
  } finally {
    pending?.catch(() => undefined);
    await presence?.close();
    reader.disconnect();
  }
}

/** Per-task output and live chunks, dropped when the task's result arrives. */
class FollowState {
  finished = 0;
  private readonly output = new Map<string, OutputChunk[]>();
  private readonly live = new Map<string, OutputChunk[]>();

  constructor(
    private readonly runId: string,
    private readonly h: FollowHandlers,
  ) {}

  entry({ f, result }: Entry): void {
    const task = f.get('task')?.toString() ?? '';
    const type = f.get('t')?.toString();
    const chunk = (): OutputChunk => ({ stream: f.get('s')?.toString() === '2' ? 2 : 1, data: f.get('d') ?? Buffer.alloc(0) });
    if (type === 'live') {
      const c = chunk();
      append(this.live, task, c);
      this.h.onLive?.(task, c);
    } else if (type === 'out') {
      append(this.output, task, chunk());
    } else if (type === 'note') {
      this.h.onNote?.(task, f.get('m')?.toString() ?? '');
    } else if (result?.ok === true) {
      this.result(task, f, result.result);
    } else if (result) {
      this.h.onIgnored?.(this.runId, result.why);
    }
  }

  /**
   * A result entry's reading: `lo` (its output was stored once, as the live entries), `lb` (the
   * live bytes its worker published), `ob` (the run's output budget was spent).
   */
  private result(task: string, f: Map<string, Buffer>, r: TaskResult): void {
    const live = this.live.get(task) ?? [];
    const shown = live.reduce((n, c) => n + c.data.length, 0);
    const lb = Number(f.get('lb')?.toString() ?? '-1');
    // Output stored once, as the live entries (not again with the result): complete when this
    // reader saw all of them.
    const liveOnly = f.get('lo')?.toString() === '1';
    const output = liveOnly ? live : (this.output.get(task) ?? []);
    if (liveOnly && shown !== lb) r.truncated = true;
    if (f.get('ob')?.toString() === '1') Object.assign(r, overBudget(r));
    this.output.delete(task);
    this.live.delete(task);
    this.finished++;
    const total = output.reduce((n, c) => n + c.data.length, 0);
    this.h.onResult?.(r, output, lb === shown && shown === total);
  }
}

/** Adds `chunk` to `task`'s list (in place: a task's output can come in thousands of chunks). */
function append(m: Map<string, OutputChunk[]>, task: string, chunk: OutputChunk): void {
  const list = m.get(task);
  if (list) list.push(chunk);
  else m.set(task, [chunk]);
}
