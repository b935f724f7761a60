/**
 * BullMQ's fetch loop meets every error that is not a lost connection (an error reply of Redis:
 * a refused write under MISCONF, OOM or READONLY, a key of the wrong type; a job it cannot
 * read) by emitting it and fetching again at once: a run's queue with a job waiting while Redis
 * refuses writes had its worker call moveToActive about 6,500 times a second, a core's worth of
 * CPU in the worker and as much in redis-server, for as long as the refusal lasted. So a worker
 * that reports an error stops fetching (pause without waiting for its running jobs, which go on)
 * for a while that doubles with each error in a row, from FIRST_MS to MAX_MS, and then fetches
 * again; a job taken resets it. An error of another part of the worker (a lock renewal) pauses
 * fetching for FIRST_MS once. A closing worker is never resumed.
 */
import type { Worker } from 'bullmq';

/** The first pause, and the longest: a refusal that lasts is tried again every MAX_MS. */
export const FETCH_BACKOFF = { firstMs: 100, maxMs: 5000 } as const;

/** The part of a BullMQ worker the backoff drives. */
type Fetching = Pick<Worker, 'pause' | 'resume' | 'on'>;

/** Makes `worker` back off as described above, and hands each of its errors to `onError`. */
export function backOffOnErrors(worker: Fetching, onError: (e: Error) => void, timing: { firstMs: number; maxMs: number } = FETCH_BACKOFF): void {
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let closing = false;
  worker.on('error', (e: Error) => {
    onError(e);
    if (closing || timer) return;
    const delay = Math.min(timing.maxMs, timing.firstMs * 2 ** Math.min(failures, 16));
    failures += 1;
    worker.pause(true).catch(() => undefined);
    timer = setTimeout(() => {
      timer = undefined;
      if (!closing) worker.resume();
    }, delay);
  });
  worker.on('active', () => {
    failures = 0;
  });
  worker.on('closing', () => {
    closing = true;
    clearTimeout(timer);
    timer = undefined;
  });
}
