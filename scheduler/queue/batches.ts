/**
 * Takes items from an async iterator in batches: as many as are ready, up to `max`, without
 * waiting long for a slow source (a pipe that trickles lines still gets its tasks enqueued).
 */
import { raceAbort } from '../../proto/index.js';

/** Pulls batches from an async iterator; an item being awaited is kept for the next batch. */
export class BatchPuller<T> {
  private pending: Promise<IteratorResult<T>> | undefined;
  /**
   * True once the source is exhausted: as soon as a read finds its end, also one that no take()
   * is waiting for any more (the read-ahead below, whose wait is short): a run whose window is
   * full knows its input whole once the end is read, however long that read took.
   */
  ended = false;

  constructor(private readonly it: AsyncIterator<T>) {}

  /** The read in flight, started if there is none; its end marks the source ended when it comes. */
  private read(): Promise<IteratorResult<T>> {
    if (!this.pending) {
      const p = this.it.next();
      this.pending = p;
      p.then(
        (r) => {
          if (r.done) this.ended = true;
        },
        () => undefined,
      );
    }
    return this.pending;
  }

  /**
   * Up to `max` items: waits for the first (or until `stop` aborts), then takes more while they
   * come within `idleMs`. An empty batch means the source ended or `stop` aborted.
   */
  async take(max: number, idleMs: number, stop?: AbortSignal): Promise<T[]> {
    const out: T[] = [];
    // The batch ends idleMs after its first item, however many come meanwhile.
    let lateAt = Infinity;
    while (out.length < max && !this.ended && !stop?.aborted) {
      const pending = this.read();
      if (out.length === 1 && lateAt === Infinity) lateAt = Date.now() + idleMs;
      // A wait of its own per item (proto/race.ts), not a race against one promise for the batch.
      const r = await raceAbort(pending, [stop], lateAt === Infinity ? undefined : Math.max(0, lateAt - Date.now()));
      if (r === 'stop' || r === 'tick') break;
      this.pending = undefined;
      if (r.done) this.ended = true;
      else out.push(r.value);
    }
    // A full batch: does the source end right after it? (An item that comes stays for the next
    // batch.) A run whose input fills one window exactly then knows its size even if it ends
    // before a slot frees for another take (its wait timed out, Redis went away): the read goes
    // on after this short wait, and marks the source ended when it finds the end (read()).
    if (out.length === max && !this.ended && !stop?.aborted) {
      const r = await raceAbort(this.read(), [stop], idleMs);
      if (r !== 'stop' && r !== 'tick' && r.done) this.pending = undefined;
    }
    return out;
  }

  /**
   * Ends the source early (closes a file being read). Not waited for while a read is in flight:
   * an async generator's return waits for the read it is suspended in, and a pipe that stays
   * open with nothing to read (an idle producer) would hold the run that stopped reading it.
   */
  async close(): Promise<void> {
    this.ended = true;
    const closing = this.it.return?.().catch(() => undefined);
    if (!this.pending) await closing;
  }
}
