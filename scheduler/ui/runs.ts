/**
 * Runs as the dashboard shows them: the recent runs from the run index, each followed through
 * its result stream (read incrementally, never blocking, a bounded number of entries per tick)
 * and folded into counts: progress by outcome, tasks per second and failures per second,
 * throughput per host with slow hosts flagged, and the last failures with the tail of their
 * output. Only counts and tails are kept, so a 100,000-task run costs little memory.
 */
import type { Cluster, Redis } from 'ioredis';
import { compareText } from '../../proto/index.js';
import { recentRuns, type RunMeta } from '../queue/run-feed.js';
import { runEventsKey } from '../queue/results.js';
import { readResult } from '../queue/stored-result.js';
import { isCancelled } from '../queue/cancel.js';

/** Output kept per failed task. */
export const TAIL_BYTES = 2048;
/**
 * Tasks per run whose output tail is kept until their result: those that wrote most recently.
 * The stream is anyone's who can write to Redis, so the task ids in it are not a bound.
 */
export const MAX_TAILS = 1024;
const MAX_FAILURES = 50;
const SERIES_SECONDS = 900;
const RATE_WINDOW_S = 10;
/**
 * Entries per read, and reads per tick (10,240 entries a second per run at most). An output entry
 * holds up to 64 KiB: a read of 5,000 was a reply of up to 320 MB, read at once (a daemon that
 * started after a run with much output went from 58 to 510 MB within a second).
 */
const READ_COUNT = 256;
const READS_PER_TICK = 40;

/**
 * `b` in memory of its own. A field of a reply is a view into the buffer the whole reply was read
 * into (up to READ_COUNT entries); a tail kept as such a view kept that buffer alive with it.
 */
function ownCopy(b: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(b.length);
  b.copy(copy);
  return copy;
}

export interface HostView {
  host: string;
  done: number;
  failed: number;
  /** Tasks per second since the run started. */
  rate: number;
  straggler: boolean;
}

export interface FailureView {
  taskId: string;
  host: string;
  outcome: string;
  exitCode: number | null;
  reason: string;
  error?: string;
  tail: string;
  at: number;
}

/** One run, as sent to the page. */
export interface RunView {
  runId: string;
  command: string;
  fleets: string[];
  total: number;
  createdAt: number;
  done: number;
  byOutcome: Record<string, number>;
  rate: number;
  etaS: number | null;
  state: 'running' | 'done' | 'cancelling' | 'cancelled';
  hosts: HostView[];
  failures: FailureView[];
  failedTotal: number;
  /** Per second: [unix seconds, finished, failed]. */
  series: Array<[number, number, number]>;
}

interface Tracked {
  meta: RunMeta;
  last: string;
  done: number;
  byOutcome: Record<string, number>;
  hosts: Map<string, { done: number; failed: number }>;
  buckets: Map<number, [number, number]>;
  /** Output tails of tasks without a result yet: live chunks, then the result's own output. */
  tails: Map<string, { live: boolean; data: Buffer }>;
  failures: FailureView[];
  failedTotal: number;
  firstAt: number;
  lastAt: number;
  cancelled: boolean;
}

type StreamReply = Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;

function fields(flat: Buffer[]): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (let i = 0; i + 1 < flat.length; i += 2) m.set((flat[i] as Buffer).toString(), flat[i + 1] as Buffer);
  return m;
}

/** Follows the recent runs. */
export class RunTracker {
  private readonly runs = new Map<string, Tracked>();

  /**
   * `hostName` turns the agent address a result names into the host name the page shows
   * (the collector knows both); unknown addresses stay as they are.
   */
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly hostName: (address: string) => string = (a) => a,
    private readonly limit = 20,
  ) {}

  /** Reads what is new; returns the runs that changed. */
  async tick(now = Date.now()): Promise<RunView[]> {
    const metas = await recentRuns(this.redis, this.limit);
    const keep = new Set(metas.map((m) => m.runId));
    for (const id of this.runs.keys()) if (!keep.has(id)) this.runs.delete(id);
    const changed: RunView[] = [];
    for (const meta of metas) {
      let t = this.runs.get(meta.runId);
      if (!t) {
        t = {
          meta,
          last: '0',
          done: 0,
          byOutcome: {},
          hosts: new Map(),
          buckets: new Map(),
          tails: new Map(),
          failures: [],
          failedTotal: 0,
          firstAt: meta.createdAt,
          lastAt: 0,
          cancelled: false,
        };
        this.runs.set(meta.runId, t);
        changed.push(this.view(t, now));
      }
      if (t.done >= t.meta.total) continue;
      const before = t.done;
      const wasCancelled = t.cancelled;
      await this.read(t);
      t.cancelled = t.cancelled || (await isCancelled(this.redis, meta.runId));
      if (t.done !== before || t.cancelled !== wasCancelled || t.done < t.meta.total) changed.push(this.view(t, now));
    }
    return dedupe(changed);
  }

  /** Every tracked run, newest first. */
  all(now = Date.now()): RunView[] {
    return [...this.runs.values()].sort((a, b) => b.meta.createdAt - a.meta.createdAt).map((t) => this.view(t, now));
  }

  /** Whether `runId` is one of the tracked runs. */
  has(runId: string): boolean {
    return this.runs.has(runId);
  }

  private async read(t: Tracked): Promise<void> {
    for (let i = 0; i < READS_PER_TICK; i++) {
      const reply = (await this.redis.xreadBuffer('COUNT', READ_COUNT, 'STREAMS', runEventsKey(t.meta.runId), t.last)) as StreamReply;
      const entries = reply?.[0]?.[1] ?? [];
      for (const [id, flat] of entries) {
        t.last = id.toString();
        this.fold(t, fields(flat));
      }
      if (entries.length < READ_COUNT) return;
    }
  }

  private fold(t: Tracked, f: Map<string, Buffer>): void {
    // Fields are views into the reply's buffer: what is kept is copied out (ownCopy).
    const task = f.get('task')?.toString() ?? '';
    const type = f.get('t')?.toString();
    if (type === 'out' || type === 'live') {
      const live = type === 'live';
      const prev = t.tails.get(task);
      const d = f.get('d') ?? Buffer.alloc(0);
      // The result's output is the whole output: it replaces what was shown live.
      const joined = prev && prev.live === live ? Buffer.concat([prev.data, d]) : d;
      // Re-inserted: the map's order is that of the last output, and the stalest tail goes first.
      t.tails.delete(task);
      t.tails.set(task, { live, data: ownCopy(joined.length > TAIL_BYTES ? joined.subarray(joined.length - TAIL_BYTES) : joined) });
      if (t.tails.size > MAX_TAILS) t.tails.delete(t.tails.keys().next().value as string);
      return;
    }
    if (type !== 'res') return;
    // Checked as every reader of results checks them (a result in Redis is external input).
    const read = readResult(f.get('r'), { runId: t.meta.runId, taskId: task });
    if (!read.ok) return;
    const r = read.result;
    const at = Date.parse(r.finishedAt) || Date.now();
    const failed = r.outcome !== 'succeeded';
    t.done++;
    t.byOutcome[r.outcome] = (t.byOutcome[r.outcome] ?? 0) + 1;
    const host = this.hostName(r.host);
    const h = t.hosts.get(host) ?? { done: 0, failed: 0 };
    h.done++;
    if (failed) h.failed++;
    t.hosts.set(host, h);
    const sec = Math.floor(at / 1000);
    const b = t.buckets.get(sec) ?? [0, 0];
    b[0]++;
    if (failed) b[1]++;
    t.buckets.set(sec, b);
    t.lastAt = Math.max(t.lastAt, at);
    const tail = t.tails.get(task);
    t.tails.delete(task);
    if (!failed) return;
    t.failedTotal++;
    t.failures.unshift({
      taskId: r.taskId,
      host,
      outcome: r.outcome,
      exitCode: r.exitCode,
      reason: r.reason,
      error: r.error,
      tail: tail?.data.toString('utf8') ?? '',
      at,
    });
    if (t.failures.length > MAX_FAILURES) t.failures.pop();
  }

  private view(t: Tracked, now: number): RunView {
    const finished = t.done >= t.meta.total;
    const endSec = Math.floor((finished ? t.lastAt : now) / 1000);
    for (const s of t.buckets.keys()) if (s < endSec - SERIES_SECONDS) t.buckets.delete(s);
    let recent = 0;
    for (let s = endSec - RATE_WINDOW_S + 1; s <= endSec; s++) recent += t.buckets.get(s)?.[0] ?? 0;
    const elapsedS = Math.max(1, ((finished ? t.lastAt : now) - t.firstAt) / 1000);
    const rate = finished ? t.done / elapsedS : recent / RATE_WINDOW_S;
    const series: Array<[number, number, number]> = [];
    const startSec = Math.max(Math.floor(t.firstAt / 1000), endSec - SERIES_SECONDS);
    for (let s = startSec; s <= endSec; s++) {
      const b = t.buckets.get(s);
      series.push([s, b?.[0] ?? 0, b?.[1] ?? 0]);
    }
    return {
      runId: t.meta.runId,
      command: t.meta.command,
      fleets: t.meta.fleets,
      total: t.meta.total,
      createdAt: t.meta.createdAt,
      done: t.done,
      byOutcome: { ...t.byOutcome },
      rate,
      etaS: finished ? 0 : rate > 0 ? (t.meta.total - t.done) / rate : null,
      // A cancelled run (its cancel flag set: runs cancel, the page, a Ctrl-C of its gaxx run) stays
      // cancelled once every task has its result, as `gaxx runs` says; it showed as done.
      state: t.cancelled ? (finished ? 'cancelled' : 'cancelling') : finished ? 'done' : 'running',
      hosts: hostViews(t, elapsedS),
      failures: t.failures,
      failedTotal: t.failedTotal,
      series,
    };
  }
}

/**
 * Per-host throughput; a host is a straggler when it finished under half the median host's
 * count (once the run has enough results for that to mean something).
 */
function hostViews(t: Tracked, elapsedS: number): HostView[] {
  const list = [...t.hosts.entries()].map(([host, h]) => ({ host, done: h.done, failed: h.failed, rate: h.done / elapsedS, straggler: false }));
  if (list.length >= 3 && t.done >= 20) {
    const sorted = list.map((h) => h.done).sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] as number;
    for (const h of list) h.straggler = h.done < median / 2;
  }
  return list.sort((a, b) => compareText(a.host, b.host));
}

function dedupe(views: RunView[]): RunView[] {
  const m = new Map<string, RunView>();
  for (const v of views) m.set(v.runId, v);
  return [...m.values()];
}
