/**
 * Takes items from an async iterator in batches: as many as are ready, up to `max`, without
 * waiting long for a slow source (a pipe that trickles lines still gets its tasks enqueued).
 */

const IDLE = Symbol('idle');

/** Pulls batches from an async iterator; an item being awaited is kept for the next batch. */
export class BatchPuller<T> {
  private pending: Promise<IteratorResult<T>> | undefined;
  /** True once the source is exhausted. */
  ended = false;

  constructor(private readonly it: AsyncIterator<T>) {}

  /**
   * Up to `max` items: waits for the first (or until `stop` aborts), then takes more while they
   * come within `idleMs`. An empty batch means the source ended or `stop` aborted.
   */
  async take(max: number, idleMs: number, stop?: AbortSignal): Promise<T[]> {
    const out: T[] = [];
    let timer: NodeJS.Timeout | undefined;
    let onStop: (() => void) | undefined;
    let late: Promise<typeof IDLE> | undefined;
    const idle = new Promise<typeof IDLE>((r) => {
      onStop = () => r(IDLE);
      stop?.addEventListener('abort', onStop, { once: true });
    });
    try {
      while (out.length < max && !this.ended && !stop?.aborted) {
        this.pending ??= this.it.next();
        // One timer per batch, armed once the batch has its first item.
        if (out.length === 1 && !late) late = new Promise<typeof IDLE>((r) => (timer = setTimeout(() => r(IDLE), idleMs)));
        const r = await Promise.race(late ? [this.pending, idle, late] : [this.pending, idle]);
        if (r === IDLE) break;
        this.pending = undefined;
        if (r.done) this.ended = true;
        else out.push(r.value);
      }
      return out;
    } finally {
      clearTimeout(timer);
      if (onStop) stop?.removeEventListener('abort', onStop);
    }
  }

  /** Ends the source early (closes a file being read). */
  async close(): Promise<void> {
    this.ended = true;
    await this.it.return?.().catch(() => undefined);
  }
}
