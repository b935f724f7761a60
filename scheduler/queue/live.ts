/**
 * Live output: a running task's stdout/stderr published to the run's stream as it arrives
 * (`t=live` entries), so `gaxx run` can print a long task's output progressively.
 *
 * Bounded: small chunks are coalesced (flushed at `flushBytes` or `flushMs` after the first
 * unflushed byte), at most the task's output cap is published live, and an entry is added only
 * while the task has no result yet (a Lua guard on the run's `done` hash).
 *
 * Exact: a task's live entries are always the start of ONE execution's output, in order, each
 * byte once, whichever dispatches published them. The run keeps, per task, how many bytes its
 * live entries hold (`run:<id>:live`), and an entry is added only at exactly that offset (a
 * compare-and-add in the script). A dispatch that takes a job over (its worker died or drained)
 * starts from that count: when the agent attaches it to the same execution and replays its
 * output from the first byte (Started.from_start), the bytes already shown are skipped and the
 * rest is published once. When it cannot continue exactly (the agent's buffer dropped the start,
 * another execution began: a retry, a re-run elsewhere), the task's live view is closed for good
 * (the count set to -1) and nothing more of it is published live: its result carries the output.
 *
 * The result stays the record. When the live entries hold exactly the whole output, the output
 * is not stored a second time: the result entry says so (`lo=1`) and readers take it from the
 * live entries. Otherwise the result carries the full output, and says how many bytes were
 * streamed live as its exact prefix. Live and final output count against the run's byte budget;
 * beyond it nothing more is stored. A reader that displayed exactly that much needs not print
 * the output again; otherwise it prints the full output after the live part.
 */
import type { Cluster, Redis } from 'ioredis';
import { gaxxKey } from '../redis/redis.js';
import { runBytesKey, runDoneKey, runEventsKey, RESULT_TTL_MS, RUN_OUTPUT_BUDGET_BYTES, STREAM_MAXLEN, type OutputChunk } from './results.js';

/** Per task of a run: the bytes its live entries hold, or -1 once its live view is closed. */
export const runLiveKey = (runId: string): string => gaxxKey('run', runId, 'live');

// KEYS: events, done, the run's stored-output byte count, the run's live bytes by task.
// ARGV: task, maxlen, ttl, size, budget, the offset the entries continue from, pairs.
const LIVE = `
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
if tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0') ~= tonumber(ARGV[6]) then return 0 end
if tonumber(redis.call('GET', KEYS[3]) or '0') + tonumber(ARGV[4]) > tonumber(ARGV[5]) then return 0 end
for i = 7, #ARGV, 2 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 't', 'live', 'task', ARGV[1], 's', ARGV[i], 'd', ARGV[i + 1])
end
redis.call('INCRBY', KEYS[3], ARGV[4])
redis.call('HINCRBY', KEYS[4], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[4], ARGV[3])
return 1
`;

// KEYS: events, done. ARGV: task, maxlen, ttl, text.
const NOTE = `
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 't', 'note', 'task', ARGV[1], 'm', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/** The most of a note's text that is kept. */
const NOTE_CHARS = 500;

/**
 * A word about a running task for whoever follows its run (`t=note`: an agent it waits for went
 * away...), shown as a diagnostic, never as output; only while the task has no result. Display
 * only: a note that cannot be written is dropped.
 */
export async function publishNote(redis: Redis | Cluster, runId: string, taskId: string, text: string): Promise<void> {
  await redis
    .eval(NOTE, 2, runEventsKey(runId), runDoneKey(runId), taskId, String(STREAM_MAXLEN), String(RESULT_TTL_MS), text.slice(0, NOTE_CHARS))
    .catch(() => undefined);
}

/** Bytes of `taskId`'s output its live entries hold (earlier dispatches'), or -1 when its live view is closed. */
export async function liveShownBefore(redis: Redis | Cluster, runId: string, taskId: string): Promise<number> {
  const n = Number((await redis.hget(runLiveKey(runId), taskId)) ?? '0');
  return Number.isSafeInteger(n) && n >= 0 ? n : -1;
}

export interface LiveOptions {
  /** Flush once this many bytes are pending (default 16 KiB). */
  flushBytes?: number;
  /** Flush this long after the first pending byte (default 100 ms). */
  flushMs?: number;
  /** The run's output budget (results.ts RUN_OUTPUT_BUDGET_BYTES by default). */
  budgetBytes?: number;
  /**
   * Bytes of the task's output earlier dispatches published live (liveShownBefore), or -1 when
   * its live view was closed; default 0 (the job's first dispatch).
   */
  shownBefore?: number;
}

/** What a task's live stream amounted to. */
export interface LiveSummary {
  /** Bytes the task's live entries hold (earlier dispatches' too). */
  bytes: number;
  /** True when those bytes are exactly the start of the task's output, in order (none lost, none twice). */
  exact: boolean;
}

/** One task's live output publisher (one per dispatch of a job). */
export class LiveOutput {
  private pending: OutputChunk[] = [];
  private pendingBytes = 0;
  /** Bytes the task's live entries hold: earlier dispatches' and this one's. */
  private published: number;
  /** Bytes of output still to come that the live entries hold already (an attach replays them). */
  private skip = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  /** Nothing more is taken (see spoil). */
  private spoiled = false;
  /** A publish failed or was refused: nothing more is published (the entries would have a gap). */
  private broken = false;
  private readonly flushBytes: number;
  private readonly flushMs: number;
  private readonly budgetBytes: number;

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly runId: string,
    private readonly taskId: string,
    private readonly capBytes: number,
    opts: LiveOptions = {},
  ) {
    this.flushBytes = opts.flushBytes ?? 16 * 1024;
    this.flushMs = opts.flushMs ?? 100;
    this.budgetBytes = opts.budgetBytes ?? RUN_OUTPUT_BUDGET_BYTES;
    const before = opts.shownBefore ?? 0;
    this.published = Math.max(0, before);
    this.spoiled = before < 0;
  }

  /** Bytes of the current execution's output the live view covers (published or about to be). */
  private get covered(): number {
    return this.published + this.pendingBytes;
  }

  /** A chunk as it arrives from the agent. */
  push(c: OutputChunk): void {
    if (this.spoiled) return;
    let data = c.data;
    if (this.skip > 0) {
      const n = Math.min(this.skip, data.length);
      this.skip -= n;
      data = data.subarray(n);
      if (data.length === 0) return;
    }
    const room = this.capBytes - this.covered;
    if (room <= 0) return this.spoil();
    const cut = data.length > room;
    if (cut) data = data.subarray(0, room);
    const last = this.pending.at(-1);
    // Consecutive chunks of one stream become one entry.
    if (last && last.stream === c.stream) last.data = Buffer.concat([last.data, data]);
    else this.pending.push({ stream: c.stream, data });
    this.pendingBytes += data.length;
    if (cut) this.spoil();
    else if (this.pendingBytes >= this.flushBytes) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  /**
   * The agent attached this dispatch to the task's execution, or replayed its end: with
   * `fromStart`, the output events that follow begin with its first byte, and those the live
   * view covers already are skipped; without, the live view cannot continue exactly and closes.
   */
  resume(fromStart: boolean): void {
    if (!fromStart) return this.spoil();
    this.skip = this.covered;
  }

  /** A new execution of the task began: once the live view holds output, it is another's, and it closes. */
  restart(): void {
    this.skip = 0;
    if (this.covered > 0) this.spoil();
  }

  /**
   * The live view can no longer continue exactly: what is pending (still exact) is published,
   * then the task's live view is closed for every dispatch (its count set to -1) and nothing
   * more is published live. Its result carries the output.
   */
  spoil(): void {
    if (this.spoiled) return;
    this.flush();
    this.spoiled = true;
    this.chain = this.chain.then(async () => {
      await this.redis
        .multi()
        .hset(runLiveKey(this.runId), this.taskId, '-1')
        .pexpire(runLiveKey(this.runId), RESULT_TTL_MS)
        .exec()
        .catch(() => undefined);
    });
  }

  /** Publishes what is pending, and how the live stream went. */
  async close(): Promise<LiveSummary> {
    this.flush();
    await this.chain;
    return { bytes: this.published, exact: !this.spoiled && !this.broken };
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const chunks = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    this.chain = this.chain.then(async () => {
      if (this.broken) return;
      // The offset these bytes continue from: what the entries held when the last flush landed.
      const args: Array<string | Buffer> = [
        this.taskId,
        String(STREAM_MAXLEN),
        String(RESULT_TTL_MS),
        String(bytes),
        String(this.budgetBytes),
        String(this.published),
      ];
      for (const c of chunks) args.push(String(c.stream), c.data);
      try {
        const added = await this.redis.eval(
          LIVE,
          4,
          runEventsKey(this.runId),
          runDoneKey(this.runId),
          runBytesKey(this.runId),
          runLiveKey(this.runId),
          ...args,
        );
        if (added === 1) this.published += bytes;
        else this.broken = true;
      } catch {
        // Display only: the result carries the full output anyway. The entries hold a prefix
        // still (the script adds all of a flush or none), which the count says.
        this.broken = true;
      }
      if (this.broken) this.spoiled = true;
    });
  }
}
