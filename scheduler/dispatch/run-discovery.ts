/**
 * How a worker that serves every run (the daemon) learns which runs exist: the registry in
 * Redis (runs.ts), read at start and every `pollMs`, plus the `{gaxx}:runs:new` channel so a new
 * run is served at once. A run that is no longer registered is reported gone. A run whose owner
 * stopped refreshing it and that has no job left to run is forgotten here (queue removed), so a
 * daemon does not serve finished runs forever.
 */
import type { Cluster, Redis } from 'ioredis';
import { duplicateFor } from '../redis/redis.js';
import { listRuns, RUN_TOUCH_MS, RUNS_CHANNEL, staleRuns } from '../queue/runs.js';

export interface RunDiscoveryOptions {
  redis: Redis | Cluster;
  /** A run to serve appeared. */
  onRun(runId: string): void;
  /** A run is no longer registered (finished, forgotten). */
  onGone(runId: string): void;
  /** Whether a stale run has jobs left (waiting, active, delayed); false: it may be forgotten. */
  hasWork(runId: string): Promise<boolean>;
  /** Removes an idle stale run's queue and registry entry. */
  forget(runId: string): Promise<void>;
  pollMs?: number;
  /** Repeated errors are reported through this (rate-limited by the caller). */
  onError?(e: Error): void;
}

export class RunDiscovery {
  private readonly known = new Set<string>();
  private readonly sub: Redis | Cluster;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(private readonly o: RunDiscoveryOptions) {
    this.sub = duplicateFor(o.redis, 'worker');
    this.sub.on('error', (e: Error) => o.onError?.(e));
  }

  /** Subscribes, reads the registry once, then polls. */
  async start(): Promise<void> {
    // Polling first: a Redis that is down at start must not leave the daemon deaf for good.
    this.timer = setInterval(() => void this.poll(), this.o.pollMs ?? 2000);
    this.sub.on('message', (_ch: string, runId: string) => this.add(runId));
    await this.sub.subscribe(RUNS_CHANNEL);
    await this.poll();
  }

  private add(runId: string): void {
    if (this.known.has(runId)) return;
    this.known.add(runId);
    this.o.onRun(runId);
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const runs = await listRuns(this.o.redis);
      const stale = new Set(await staleRuns(this.o.redis, Date.now() - 3 * RUN_TOUCH_MS));
      for (const r of runs) {
        // A stale run with nothing left is forgotten, never served (a worker started and closed
        // at once would still be connecting).
        if (stale.has(r) && !(await this.o.hasWork(r))) {
          await this.o.forget(r);
          if (this.known.delete(r)) this.o.onGone(r);
          continue;
        }
        this.add(r);
      }
      const listed = new Set(runs);
      for (const r of [...this.known]) {
        if (listed.has(r)) continue;
        this.known.delete(r);
        this.o.onGone(r);
      }
    } catch (e) {
      this.o.onError?.(e as Error);
    } finally {
      this.polling = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.sub.disconnect();
  }
}
