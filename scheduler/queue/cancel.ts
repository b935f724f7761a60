/**
 * Cancelling a run. A cancel is a flag in Redis, `{gaxx}:run:<runId>:cancel` (with the results'
 * TTL), so every worker serving the run honours it, in a daemon or in the `gaxx run` process:
 * workers check it before dispatching a task and poll it for the runs they have in flight
 * (`CancelWatch`), then Cancel those tasks on their agents by exec id. A process that holds
 * the worker itself also cancels directly, without waiting for the poll.
 */
import type { Cluster, Redis } from 'ioredis';
import { gaxxKey } from '../redis/redis.js';
import { RESULT_TTL_MS } from './results.js';

/** How often a worker with tasks in flight checks their runs' cancel flags. */
export const CANCEL_POLL_MS = 250;

export const runCancelKey = (runId: string): string => gaxxKey('run', runId, 'cancel');

/** Marks a run as cancelled for every worker. */
export async function requestCancel(redis: Redis | Cluster, runId: string): Promise<void> {
  await redis.set(runCancelKey(runId), '1', 'PX', RESULT_TTL_MS);
}

/** Whether a run has been cancelled. */
export async function isCancelled(redis: Redis | Cluster, runId: string): Promise<boolean> {
  return (await redis.exists(runCancelKey(runId))) === 1;
}

/**
 * The in-flight tasks of one worker by run, each with the controller that cancels its dispatch.
 * While any task is tracked, the runs' flags are polled (one MGET; all keys share the `{gaxx}`
 * slot, so this holds on a Cluster too).
 */
export class CancelWatch {
  private readonly runs = new Map<string, Set<AbortController>>();
  /** Recent answers of `check`, so a run's many tasks cost one lookup per poll interval. */
  private readonly checked = new Map<string, { at: number; cancelled: Promise<boolean> }>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly pollMs = CANCEL_POLL_MS,
  ) {}

  /** Tracks a task of `runId`; the returned controller aborts when the run is cancelled. */
  track(runId: string): { controller: AbortController; done: () => void } {
    const controller = new AbortController();
    let set = this.runs.get(runId);
    if (!set) this.runs.set(runId, (set = new Set()));
    set.add(controller);
    this.timer ??= setInterval(() => void this.poll(), this.pollMs);
    const done = (): void => {
      set.delete(controller);
      if (set.size === 0 && this.runs.get(runId) === set) this.runs.delete(runId);
      if (this.runs.size === 0) this.stop();
    };
    return { controller, done };
  }

  /**
   * Whether `runId` is cancelled, asked at most once per poll interval (a task taken just after
   * a cancel is then caught by the poll, and Cancelled on its agent).
   */
  check(runId: string, now = Date.now()): Promise<boolean> {
    const hit = this.checked.get(runId);
    if (hit && (hit.at === Infinity || now - hit.at < this.pollMs)) return hit.cancelled;
    if (this.checked.size > 10_000) this.checked.clear();
    const cancelled = isCancelled(this.redis, runId).catch(() => false);
    this.checked.set(runId, { at: now, cancelled });
    return cancelled;
  }

  /** Cancels every tracked task of `runId` now (the in-process path), and any taken later. */
  cancelRun(runId: string): void {
    // A cancel is final: later checks of this run need not ask Redis.
    this.checked.set(runId, { at: Infinity, cancelled: Promise.resolve(true) });
    for (const c of this.runs.get(runId) ?? []) c.abort();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async poll(): Promise<void> {
    if (this.polling || this.runs.size === 0) return;
    this.polling = true;
    try {
      const ids = [...this.runs.keys()];
      const flags = await this.redis.mget(ids.map(runCancelKey));
      ids.forEach((id, i) => {
        if (flags[i] !== null) this.cancelRun(id);
      });
    } catch {
      // Redis unavailable: the next poll tries again.
    } finally {
      this.polling = false;
    }
  }
}
