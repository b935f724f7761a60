/**
 * Where a run's time went (`gaxx run --timings`): moments of this process's life, in ms since it
 * started (performance.timeOrigin), from Node's own start-up to the summary. A slow run shows
 * which part was slow: loading gaxx, reaching Redis, queueing, the first result (pick-up,
 * dispatch and the first task), the last one, or the end.
 */
import { performance } from 'node:perf_hooks';

export interface RunTimings {
  /** Node had started up (before gaxx's own code was loaded). */
  nodeReadyMs: number;
  /** gaxx's code was loaded and the flags checked: the run began. */
  startedMs: number;
  /** Redis was there (the embedded one started or found). */
  redisMs?: number;
  /** The first tasks were queued (all of them, for one task per host). */
  enqueuedMs?: number;
  firstResultMs?: number;
  lastResultMs?: number;
  /** Every result was in: the summary. */
  doneMs: number;
  /** Who dispatched the tasks: a `gaxx scheduler` daemon, or this process. */
  worker: 'daemon' | 'this process';
}

type Moment = 'redisMs' | 'enqueuedMs';

const round = (ms: number): number => Math.round(ms * 10) / 10;

/** Takes a run's moments as they happen; the first of each counts. */
export class RunClock {
  private readonly startedMs = performance.now();
  private readonly moments: Partial<Record<Moment, number>> = {};
  private firstResultMs: number | undefined;
  private lastResultMs: number | undefined;

  mark(m: Moment): void {
    this.moments[m] ??= performance.now();
  }

  result(): void {
    const now = performance.now();
    this.firstResultMs ??= now;
    this.lastResultMs = now;
  }

  finish(inProcess: boolean): RunTimings {
    const t: RunTimings = {
      nodeReadyMs: round(performance.nodeTiming.bootstrapComplete),
      startedMs: round(this.startedMs),
      doneMs: round(performance.now()),
      worker: inProcess ? 'this process' : 'daemon',
    };
    for (const [k, v] of Object.entries(this.moments)) t[k as Moment] = round(v);
    if (this.firstResultMs !== undefined) t.firstResultMs = round(this.firstResultMs);
    if (this.lastResultMs !== undefined) t.lastResultMs = round(this.lastResultMs);
    return t;
  }
}

/** The one human line: each moment since the process started, in order. */
export function timingsText(t: RunTimings): string {
  const parts: Array<[string, number | undefined]> = [
    ['node up', t.nodeReadyMs],
    ['gaxx loaded', t.startedMs],
    ['redis', t.redisMs],
    ['enqueued', t.enqueuedMs],
    ['first result', t.firstResultMs],
    ['last result', t.lastResultMs],
    ['done', t.doneMs],
  ];
  const shown = parts.filter((p): p is [string, number] => p[1] !== undefined).map(([k, v]) => `${k} ${Math.round(v)}`);
  return `gaxx: timings (ms since start): ${shown.join(', ')}; dispatched by ${t.worker === 'daemon' ? 'the scheduler daemon' : 'this process'}`;
}
