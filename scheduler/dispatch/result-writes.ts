/**
 * A worker's result writes when Redis refuses writes (MISCONF after a failed AOF write on a full
 * disk, OOM over `maxmemory`, READONLY on a replica: an error reply, the connection stays up).
 * Failing the job at once would burn its attempts in seconds and say nothing, while BullMQ's own
 * writes are refused too; so a refused publish is tried again with backoff (0.5 s doubling to
 * 5 s: nothing spins) for about a lock's duration, when the job's lock (not renewed meanwhile)
 * ends anyway, or until the worker drains; then the refusal fails the job as any error does.
 * The agent keeps the task's result, so a later dispatch of the job replays it. Each refusal and
 * its end is logged once per run (not per task) and told to the run (`onWrites`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { refusalReason } from '../queue/write-health.js';
import type { WorkerLog } from './worker.js';

export interface ResultWritesOptions {
  log?: WorkerLog;
  /** Redis refused a write of `runId` (`refused`: its reason), or took one again (undefined). */
  onWrites?: (runId: string, refused: string | undefined) => void;
  /** How long one publish is tried again. */
  retryForMs: number;
  /** The worker drains: stop trying. */
  signal: AbortSignal;
}

/** Publishing results, riding out refused writes (see the module comment). */
export class ResultWrites {
  /** Runs whose result writes Redis refuses, with its reason. */
  private readonly refused = new Map<string, string>();

  constructor(private readonly opts: ResultWritesOptions) {}

  /** `write()`'s value; its error once it is no refusal, or refusals lasted retryForMs, or the worker drains. */
  async publish<T>(runId: string, write: () => Promise<T>): Promise<T> {
    const until = Date.now() + this.opts.retryForMs;
    for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
      try {
        const out = await write();
        this.taken(runId);
        return out;
      } catch (e) {
        const reason = refusalReason(e);
        if (reason === undefined) throw e;
        this.refusedBy(runId, reason);
        if (this.opts.signal.aborted || Date.now() + delay > until) throw e;
        await sleep(delay, undefined, { signal: this.opts.signal }).catch(() => undefined);
      }
    }
  }

  private refusedBy(runId: string, reason: string): void {
    if (!this.refused.has(runId)) {
      // Kept small: one entry per run refused at once.
      if (this.refused.size > 1000) this.refused.clear();
      this.opts.log?.error({ run: runId, err: reason }, "redis refuses this run's result writes: its results wait until Redis takes writes again");
    }
    this.refused.set(runId, reason);
    this.opts.onWrites?.(runId, reason);
  }

  private taken(runId: string): void {
    if (this.refused.delete(runId)) this.opts.log?.info({ run: runId }, "redis takes this run's result writes again");
    this.opts.onWrites?.(runId, undefined);
  }
}
