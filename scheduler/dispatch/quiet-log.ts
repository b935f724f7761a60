/**
 * Logging under a fault: the same error repeated by a retry loop (BullMQ retries its Redis
 * commands in a tight loop while Redis is down) is logged once, then at most once per interval
 * with how many times it happened since, instead of once per occurrence.
 */
import type { WorkerLog } from './worker.js';

/** Logs repeated warnings once per `intervalMs` per message, with a count. */
export class QuietLog {
  private readonly seen = new Map<string, { at: number; count: number }>();

  constructor(
    private readonly log: WorkerLog | undefined,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Warns `msg` about `err` (with `extra`, which does not make it another warning); a repeat
   * within the interval is only counted. A repeat is the same `msg` about the same `about`
   * (default: `err`; a message whose words change, as a count of free bytes, gives its subject).
   */
  warn(msg: string, err: string, extra: object = {}, about = err): void {
    const key = `${msg}\u0000${about}`;
    const t = this.now();
    const s = this.seen.get(key);
    if (s && t - s.at < this.intervalMs) {
      s.count += 1;
      return;
    }
    // Keep the table small: a fault produces few distinct messages.
    if (this.seen.size > 100) this.seen.clear();
    this.seen.set(key, { at: t, count: 0 });
    this.log?.warn({ err, ...extra, ...(s && s.count > 0 ? { repeated: s.count, sinceMs: t - s.at } : {}) }, msg);
  }
}
