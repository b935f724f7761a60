/**
 * Live output: a running task's stdout/stderr published to the run's stream as it arrives
 * (`t=live` entries), so `gaxx run` can print a long task's output progressively.
 *
 * Bounded: small chunks are coalesced (flushed at `flushBytes` or `flushMs` after the first
 * unflushed byte), at most the task's output cap is published live, and an entry is added only
 * while the task has no result yet (a Lua guard on the run's `done` hash).
 *
 * The result stays the record. When the live entries hold exactly the whole output (one fresh
 * execution, nothing lost), the output is not stored a second time: the result entry says so
 * (`lo=1`) and readers take it from the live entries. Otherwise the result carries the full
 * output, and says how many bytes were streamed live as its exact prefix. Live and final output
 * count against the run's byte budget; beyond it nothing more is stored. A reader that displayed
 * exactly that much needs not print the output again; otherwise (a scheduler died mid-task and
 * another attached, a re-run, a failed publish) it prints the full output after the live part.
 */
import type { Cluster, Redis } from 'ioredis';
import { runBytesKey, runDoneKey, runEventsKey, RESULT_TTL_MS, RUN_OUTPUT_BUDGET_BYTES, STREAM_MAXLEN, type OutputChunk } from './results.js';

// KEYS: events, done, the run's stored-output byte count. ARGV: task, maxlen, ttl, size, budget, pairs.
const LIVE = `
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
if tonumber(redis.call('GET', KEYS[3]) or '0') + tonumber(ARGV[4]) > tonumber(ARGV[5]) then return 0 end
for i = 6, #ARGV, 2 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 't', 'live', 'task', ARGV[1], 's', ARGV[i], 'd', ARGV[i + 1])
end
redis.call('INCRBY', KEYS[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
`;

export interface LiveOptions {
  /** Flush once this many bytes are pending (default 16 KiB). */
  flushBytes?: number;
  /** Flush this long after the first pending byte (default 100 ms). */
  flushMs?: number;
  /** The run's output budget (results.ts RUN_OUTPUT_BUDGET_BYTES by default). */
  budgetBytes?: number;
}

/** What a task's live stream amounted to. */
export interface LiveSummary {
  /** Bytes published live. */
  bytes: number;
  /** True when those bytes are exactly the task's output, in order (one fresh execution, all published). */
  exact: boolean;
}

/** One task's live output publisher (one per dispatch of a job). */
export class LiveOutput {
  private pending: OutputChunk[] = [];
  private pendingBytes = 0;
  private published = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private spoiled = false;
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
  }

  /** A chunk as it arrives from the agent. */
  push(c: OutputChunk): void {
    const room = this.capBytes - this.published - this.pendingBytes;
    if (room <= 0) {
      this.spoiled = true;
      return;
    }
    const data = c.data.length > room ? c.data.subarray(0, room) : c.data;
    if (data.length < c.data.length) this.spoiled = true;
    const last = this.pending.at(-1);
    // Consecutive chunks of one stream become one entry.
    if (last && last.stream === c.stream) last.data = Buffer.concat([last.data, data]);
    else this.pending.push({ stream: c.stream, data });
    this.pendingBytes += data.length;
    if (this.pendingBytes >= this.flushBytes) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  /** The output so far may not be the final output's prefix (attached, replayed, or re-run). */
  spoil(): void {
    this.spoiled = true;
  }

  /** Publishes what is pending, and how the live stream went. */
  async close(): Promise<LiveSummary> {
    this.flush();
    await this.chain;
    return { bytes: this.published, exact: !this.spoiled };
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const chunks = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    const args: Array<string | Buffer> = [this.taskId, String(STREAM_MAXLEN), String(RESULT_TTL_MS), String(bytes), String(this.budgetBytes)];
    for (const c of chunks) args.push(String(c.stream), c.data);
    this.chain = this.chain.then(async () => {
      try {
        const added = await this.redis.eval(LIVE, 3, runEventsKey(this.runId), runDoneKey(this.runId), runBytesKey(this.runId), ...args);
        if (added === 1) this.published += bytes;
        else this.spoiled = true;
      } catch {
        // Display only: the result carries the full output anyway.
        this.spoiled = true;
      }
    });
  }
}
