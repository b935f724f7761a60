/**
 * Waiting for a run's results on its stream. Every wait is bounded: each blocking read races
 * the deadline, the caller's stop signals and a tick (so a Redis that went away cannot hold the
 * wait: a read on a reconnecting connection never returns by itself). While Redis is
 * unreachable the caller hears about it (`onRedis`, about every 5 s), and after `redisGoneMs`
 * the wait ends with REDIS_UNAVAILABLE. A Redis that comes back in time changes nothing: the
 * results are in its AOF and the read goes on from the last entry seen.
 *
 * Result entries are checked as every reader checks them (stored-result.ts): one that is not a
 * valid result of this run and of its entry's task, or is of a task the wait does not wait for
 * (or already has), is skipped and reported (`onIgnored`), never collected.
 */
import type { Cluster, Redis } from 'ioredis';
import { counted, GaxxError, raceAbort } from '../../proto/index.js';
import { duplicateFor, redisError, waitReady } from '../redis/redis.js';
import { overBudget, runEventsKey, type OutputChunk, type TaskResult } from './results.js';
import { readResult, type IgnoredHandler } from './stored-result.js';
import { PROBE_MS, probeWrites, refusedError, WriteHealth, type Refusal } from './write-health.js';

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
  /** A word about a running task from its worker (an agent it waits for went away...): a diagnostic, not output. */
  onNote?: (taskId: string, text: string) => void;
  /**
   * Redis went away (`down`, repeated about every 5 s with how long) or came back; with
   * `refused`, Redis is reachable but refuses writes (its reason), or takes them again.
   */
  onRedis?: OnRedis;
  /** A result entry that was skipped (not a valid result of one of the tasks waited for), with why. */
  onIgnored?: IgnoredHandler;
  /** End the wait (REDIS_UNAVAILABLE) when Redis stays unreachable, or refuses writes, this long (default: no limit). */
  redisGoneMs?: number;
  /** Refusals of the run's writes reported by others (its in-process worker); the wait adds its own probe's. */
  writes?: WriteHealth;
  /** Collect into this object (the caller keeps what arrived when the wait throws). */
  into?: RunResults;
}

type StreamReply = Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;

/** The longest a blocking read is awaited before the loop looks at its deadline and Redis again. */
export const TICK_MS = 1000;
const REPORT_EVERY_MS = 5000;

function fieldsOf(flat: Buffer[]): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (let i = 0; i + 1 < flat.length; i += 2) m.set((flat[i] as Buffer).toString(), flat[i + 1] as Buffer);
  return m;
}

/** What a waiter hears about Redis: unreachable (`down`) or back; with `refused`, refusing writes or taking them again. */
export type OnRedis = (down: boolean, forMs: number, refused?: string) => void;

/** The run a Reachability probes writes for: `redis` is the caller's connection (not the blocking reader). */
export interface WriteWatch {
  redis: Redis | Cluster;
  runId: string;
  health?: WriteHealth;
}

/**
 * Tracks a connection's reachability from its events (shared with follow.ts), and with `writes`
 * whether Redis takes the run's writes (write-health.ts): a Redis that answers reads but refuses
 * writes is as dead for a run as one that is gone.
 */
export class Reachability {
  downSince = 0;
  private reported = 0;
  private readonly health: WriteHealth;
  private probing = false;
  private probedAt = 0;
  private refusedReported = 0;
  private lastRefusal: Refusal | undefined;

  constructor(
    conn: Redis | Cluster,
    private readonly onRedis?: OnRedis,
    private readonly writes?: WriteWatch,
  ) {
    this.health = writes?.health ?? new WriteHealth();
    const down = (): void => {
      if (this.downSince === 0) this.downSince = Date.now();
    };
    conn.on('close', down);
    conn.on('reconnecting', down);
    conn.on('end', down);
    conn.on('ready', () => {
      if (this.downSince !== 0 && this.reported !== 0) this.onRedis?.(false, Date.now() - this.downSince);
      this.downSince = 0;
      this.reported = 0;
    });
  }

  /** Reports an outage about every 5 s (the first after a second); returns how long it lasts. */
  tick(now = Date.now()): number {
    if (this.downSince === 0) return 0;
    const forMs = now - this.downSince;
    if (forMs >= TICK_MS && now - this.reported >= REPORT_EVERY_MS) {
      this.reported = now;
      this.onRedis?.(true, forMs);
    }
    return forMs;
  }

  /**
   * The run's writes refused, and for how long (undefined: they go through). Probes at most every
   * PROBE_MS, one probe at a time, only while connected; reports a refusal about every 5 s (the
   * first after a second) and its end.
   */
  refusal(now = Date.now()): Refusal | undefined {
    const w = this.writes;
    if (w && this.downSince === 0 && !this.probing && now - this.probedAt >= PROBE_MS) {
      this.probedAt = now;
      this.probing = true;
      probeWrites(w.redis, w.runId)
        .then(
          (reason) => (reason === undefined ? this.health.accepted('probe') : this.health.refused('probe', reason)),
          () => undefined,
        )
        .finally(() => (this.probing = false));
    }
    const r = this.health.current(now);
    if (!r) {
      if (this.lastRefusal && this.refusedReported !== 0) this.onRedis?.(false, this.lastRefusal.forMs, this.lastRefusal.reason);
      this.lastRefusal = undefined;
      this.refusedReported = 0;
      return undefined;
    }
    this.lastRefusal = r;
    if (r.forMs >= TICK_MS && now - this.refusedReported >= REPORT_EVERY_MS) {
      this.refusedReported = now;
      this.onRedis?.(true, r.forMs, r.reason);
    }
    return r;
  }

  /** The wait's end when Redis is unreachable, or refuses writes, longer than `goneMs`. */
  check(goneMs: number | undefined, what: string, now = Date.now()): void {
    const downFor = this.tick(now);
    const refused = this.refusal(now);
    if (goneMs === undefined) return;
    if (downFor > goneMs) throw new GaxxError('REDIS_UNAVAILABLE', `redis unreachable for ${Math.round(downFor / 1000)} s ${what}`);
    if (refused && refused.forMs > goneMs) throw refusedError(refused, what);
  }
}

/** Reads the run's stream until every one of `taskIds` has a result. */
export async function waitForRun(redis: Redis | Cluster, runId: string, taskIds: readonly string[], opts: WaitOptions = {}): Promise<RunResults> {
  const want = new Set(taskIds);
  const out: RunResults = opts.into ?? { results: new Map(), output: new Map() };
  const seen: Seen = { liveBytes: new Map(), liveChunks: new Map() };
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  // Blocking reads get their own connection, so the caller's stays free; it rides out a Redis
  // restart (the results are in the AOF) instead of failing the wait.
  const reader = duplicateFor(redis, 'worker');
  reader.on('error', () => undefined);
  const reach = new Reachability(reader, opts.onRedis, { redis, runId, ...(opts.writes ? { health: opts.writes } : {}) });
  const stops = [opts.until, opts.signal];
  let last = '0';
  let pending: Promise<StreamReply> | undefined;
  try {
    const ready = waitReady(reader, Math.min(opts.redisGoneMs ?? 30_000, Math.max(1, deadline - Date.now())));
    if ((await raceAbort(ready, stops)) === 'stop') return out;
    while (out.results.size < want.size) {
      if (opts.until?.aborted) break;
      if (opts.signal?.aborted) throw new GaxxError('CANCELLED', 'stopped waiting for the run');
      const left = deadline - Date.now();
      if (left <= 0)
        throw new GaxxError('DEADLINE_EXCEEDED', `run ${runId}: ${want.size - out.results.size} of ${counted(want.size, 'task')} had no result in time`);
      reach.check(opts.redisGoneMs, `while waiting for run ${runId}`);
      // One read at a time: a read issued while Redis is away waits in the connection's queue
      // and is raced again, never stacked (stacked blocking reads would run one after another).
      pending ??= reader
        .xreadBuffer('COUNT', 1000, 'BLOCK', Math.max(1, Math.min(TICK_MS, left)), 'STREAMS', runEventsKey(runId), last)
        .catch((e: unknown) => Promise.reject(redisError(e, `waiting for run ${runId}`))) as Promise<StreamReply>;
      const got = await raceAbort(pending, stops, Math.min(TICK_MS + 500, Math.max(1, left)));
      if (got === 'stop' || got === 'tick') continue;
      pending = undefined;
      for (const [, entries] of got ?? []) {
        for (const [id, flat] of entries) {
          last = id.toString();
          collect(runId, fieldsOf(flat), want, out, opts, seen);
        }
      }
    }
    return out;
  } finally {
    pending?.catch(() => undefined);
    reader.disconnect();
  }
}

interface Seen {
  /** Live bytes and chunks per task (the output itself when the result says it is the live part). */
  liveBytes: Map<string, number>;
  liveChunks: Map<string, OutputChunk[]>;
}

function collect(runId: string, f: Map<string, Buffer>, want: Set<string>, out: RunResults, opts: WaitOptions, seen: Seen): void {
  const task = f.get('task')?.toString() ?? '';
  const type = f.get('t')?.toString();
  if (!want.has(task) || out.results.has(task)) {
    if (type === 'res') opts.onIgnored?.(runId, 'taskId: not a task of this run, or one that has its result');
    return;
  }
  const chunkOf = (): OutputChunk => ({ stream: f.get('s')?.toString() === '2' ? 2 : 1, data: f.get('d') ?? Buffer.alloc(0) });
  if (type === 'live') {
    const chunk = chunkOf();
    seen.liveBytes.set(task, (seen.liveBytes.get(task) ?? 0) + chunk.data.length);
    seen.liveChunks.set(task, [...(seen.liveChunks.get(task) ?? []), chunk]);
    opts.onLive?.(task, chunk);
  } else if (type === 'out') {
    out.output.set(task, [...(out.output.get(task) ?? []), chunkOf()]);
  } else if (type === 'note') {
    opts.onNote?.(task, f.get('m')?.toString() ?? '');
  } else if (type === 'res') {
    const read = readResult(f.get('r'), { runId, taskId: task });
    if (!read.ok) return opts.onIgnored?.(runId, read.why);
    const r = read.result;
    const shown = seen.liveBytes.get(task) ?? 0;
    const lb = Number(f.get('lb')?.toString() ?? '-1');
    if (f.get('lo')?.toString() === '1') {
      // Stored once, as the live entries: complete when this reader saw all of them.
      out.output.set(task, seen.liveChunks.get(task) ?? []);
      if (shown !== lb) r.truncated = true;
    }
    if (f.get('ob')?.toString() === '1') Object.assign(r, overBudget(r));
    seen.liveChunks.delete(task);
    out.results.set(task, r);
    const output = out.output.get(task) ?? [];
    // Shown exactly when the publishing worker vouches that its live bytes were the output's
    // start, the reader saw just those (no dead worker's, none trimmed), and that was all of it.
    const total = output.reduce((n, c) => n + c.data.length, 0);
    opts.onResult?.(r, output, lb === shown && shown === total);
  }
}
