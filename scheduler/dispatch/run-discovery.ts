/**
 * How a worker that serves every run (the daemon) learns which runs exist: the registry in
 * Redis (runs.ts), read at start and every `pollMs`, plus the `{gaxx}:runs:new` channel so a new
 * run is served at once. A run that is no longer registered is reported gone. A run whose owner
 * stopped refreshing it and that has no job left to run is forgotten here (queue removed), so a
 * daemon does not serve finished runs forever.
 *
 * The queue is not a trust root: anyone who can write to Redis can publish on the channel or add
 * members to the registry. So a run id is used only once it matches RUN_ID, only a run with a
 * record or jobs (`exists`) is served (a made-up id costs one EXISTS a poll, no worker; announced,
 * it is served while that is checked, once, then announcements are checked first), one bad
 * run never stops the discovery of the others, and at most `maxRuns` are served at once (each
 * is a BullMQ worker with a connection of its own). A run over the cap waits for a slot: when
 * runs wait, served runs with no job waiting or running give theirs up (they are served again
 * once they have jobs), and waiting runs that have jobs take them.
 */
import type { Cluster, Redis } from 'ioredis';
import { duplicateFor } from '../redis/redis.js';
import { listRuns, RUN_TOUCH_MS, RUNS_CHANNEL, staleRuns } from '../queue/runs.js';
import { RUN_ID } from '../queue/task.js';

/** Runs a daemon serves at once unless told otherwise. */
export const MAX_RUNS = 100;

/** How long announcements are checked before they are served, once a made-up one was seen. */
const CHECK_FIRST_MS = 10_000;

export interface RunDiscoveryOptions {
  redis: Redis | Cluster;
  /** Serve a run (may throw: the run is then not served, and tried again next poll). */
  onRun(runId: string): void;
  /** Stop serving a run: no longer registered (finished, forgotten), or its slot was given up. */
  onGone(runId: string): void;
  /** Whether a run has jobs left (waiting, active, delayed); false: a stale one may be forgotten. */
  hasWork(runId: string): Promise<boolean>;
  /** Whether a run has a record or jobs: something to serve. */
  exists(runId: string): Promise<boolean>;
  /** Removes an idle stale run's queue and registry entry. */
  forget(runId: string): Promise<void>;
  pollMs?: number;
  /** Most runs served at once (default MAX_RUNS). */
  maxRuns?: number;
  /** Repeated errors are reported through this (rate-limited by the caller). */
  onError?(e: Error): void;
  /** A run id that is not one (from the channel or the registry), ignored. */
  onInvalid?(runId: string): void;
  /** `waiting` registered runs wait because `maxRuns` are served (each poll that finds some). */
  onFull?(waiting: number): void;
}

export class RunDiscovery {
  /** The runs being served. */
  private readonly served = new Set<string>();
  /** Until then announced runs are checked before they are served (a made-up one was seen). */
  private checkFirstUntil = 0;
  private readonly sub: Redis | Cluster;
  private readonly max: number;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(private readonly o: RunDiscoveryOptions) {
    this.max = Math.max(1, o.maxRuns ?? MAX_RUNS);
    this.sub = duplicateFor(o.redis, 'worker');
    this.sub.on('error', (e: Error) => o.onError?.(e));
  }

  /** Subscribes, reads the registry once, then polls. */
  async start(): Promise<void> {
    // Polling first: a Redis that is down at start must not leave the daemon deaf for good.
    this.timer = setInterval(() => void this.poll(), this.o.pollMs ?? 2000);
    this.sub.on('message', (_ch: string, runId: string) => void this.offer(runId));
    await this.sub.subscribe(RUNS_CHANNEL);
    await this.poll();
  }

  /** How many runs are served now. */
  get serving(): number {
    return this.served.size;
  }

  /**
   * An announced run: served now when a slot is free, else left to the poll. Never throws. It is
   * served at once and its existence checked meanwhile (checked first, its first task would wait a
   * round trip), and dropped when it has no record nor jobs; after such a made-up announcement,
   * announcements are checked first for a while, so a flood of them starts no worker.
   */
  private async offer(runId: string): Promise<void> {
    try {
      if (!this.valid(runId) || this.served.has(runId)) return;
      if (Date.now() < this.checkFirstUntil) {
        if (await this.o.exists(runId)) this.take(runId);
        return;
      }
      const exists = this.o.exists(runId);
      const took = this.take(runId);
      if (await exists) return;
      if (took) this.drop(runId);
      this.checkFirstUntil = Date.now() + CHECK_FIRST_MS;
    } catch (e) {
      this.o.onError?.(e as Error);
    }
  }

  private valid(runId: string): boolean {
    if (RUN_ID.test(runId)) return true;
    this.o.onInvalid?.(runId);
    return false;
  }

  /** Serves `runId` if a slot is free; false when none is. */
  private take(runId: string): boolean {
    if (this.served.has(runId)) return true;
    if (this.served.size >= this.max) return false;
    this.served.add(runId);
    try {
      this.o.onRun(runId);
    } catch (e) {
      this.served.delete(runId);
      throw e;
    }
    return true;
  }

  private drop(runId: string): void {
    if (this.served.delete(runId)) this.o.onGone(runId);
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const runs = (await listRuns(this.o.redis)).filter((r) => this.valid(r));
      const stale = new Set(await staleRuns(this.o.redis, Date.now() - 3 * RUN_TOUCH_MS));
      const waiting: string[] = [];
      for (const r of runs) {
        // One run's trouble is that run's: the others are still looked at.
        try {
          if (!(await this.visit(r, stale.has(r)))) waiting.push(r);
        } catch (e) {
          this.o.onError?.(e as Error);
        }
      }
      const listed = new Set(runs);
      for (const r of [...this.served]) if (!listed.has(r)) this.drop(r);
      if (waiting.length > 0) await this.makeRoom(waiting);
    } catch (e) {
      this.o.onError?.(e as Error);
    } finally {
      this.polling = false;
    }
  }

  /** Serves, forgets or skips one registered run; false when it waits for a slot. */
  private async visit(r: string, stale: boolean): Promise<boolean> {
    // A stale run with nothing left is forgotten, never served (a worker started and closed
    // at once would still be connecting).
    if (stale && !(await this.o.hasWork(r))) {
      await this.o.forget(r);
      this.drop(r);
      return true;
    }
    if (this.served.has(r)) return true;
    // Nothing to serve (a made-up id): no worker, no connection.
    if (!(await this.o.exists(r))) return true;
    return this.take(r);
  }

  /** At the cap: served runs with no job give up their slot to waiting runs that have jobs. */
  private async makeRoom(waiting: string[]): Promise<void> {
    const ready: string[] = [];
    for (const r of waiting) {
      if (ready.length >= this.max) break;
      if (await this.o.hasWork(r).catch(() => false)) ready.push(r);
    }
    for (const r of [...this.served]) {
      if (ready.length <= this.max - this.served.size) break;
      if (!(await this.o.hasWork(r).catch(() => true))) this.drop(r);
    }
    let taken = 0;
    for (const r of ready) {
      try {
        if (this.take(r)) taken += 1;
      } catch (e) {
        this.o.onError?.(e as Error);
      }
    }
    if (waiting.length > taken) this.o.onFull?.(waiting.length - taken);
  }

  stop(): void {
    clearInterval(this.timer);
    this.sub.disconnect();
  }
}
