/**
 * Whether a run's reader can count on Redis: the connection's reachability from its events, and
 * whether Redis takes the run's writes (write-health.ts). Shared by every reader of a run's
 * stream (follow.ts, and waitForRun through it): while Redis is unreachable the reader hears
 * about it (`onRedis`, about every 5 s), and after its bound the wait ends with REDIS_UNAVAILABLE.
 */
import type { Cluster, Redis } from 'ioredis';
import { GaxxError } from '../../proto/index.js';
import { PROBE_MS, probeWrites, refusedError, WriteHealth, type Refusal } from './write-health.js';

/** The longest a blocking read is awaited before the loop looks at its deadline and Redis again. */
export const TICK_MS = 1000;
const REPORT_EVERY_MS = 5000;

/** What a waiter hears about Redis: unreachable (`down`) or back; with `refused`, refusing writes or taking them again. */
export type OnRedis = (down: boolean, forMs: number, refused?: string) => void;

/** The run a Reachability probes writes for: `redis` is the caller's connection (not the blocking reader). */
export interface WriteWatch {
  redis: Redis | Cluster;
  runId: string;
  health?: WriteHealth;
}

/**
 * Tracks a connection's reachability from its events (shared with follow.ts), and with `writes`
 * whether Redis takes the run's writes (write-health.ts): a Redis that answers reads but refuses
 * writes is as dead for a run as one that is gone.
 */
export class Reachability {
  downSince = 0;
  private reported = 0;
  private readonly health: WriteHealth;
  private probing = false;
  private probedAt = 0;
  private refusedReported = 0;
  private lastRefusal: Refusal | undefined;

  constructor(
    conn: Redis | Cluster,
    private readonly onRedis?: OnRedis,
    private readonly writes?: WriteWatch,
  ) {
    this.health = writes?.health ?? new WriteHealth();
    const down = (): void => {
      if (this.downSince === 0) this.downSince = Date.now();
    };
    conn.on('close', down);
    conn.on('reconnecting', down);
    conn.on('end', down);
    conn.on('ready', () => {
      if (this.downSince !== 0 && this.reported !== 0) this.onRedis?.(false, Date.now() - this.downSince);
      this.downSince = 0;
      this.reported = 0;
    });
  }

  /** Reports an outage about every 5 s (the first after a second); returns how long it lasts. */
  tick(now = Date.now()): number {
    if (this.downSince === 0) return 0;
    const forMs = now - this.downSince;
    if (forMs >= TICK_MS && now - this.reported >= REPORT_EVERY_MS) {
      this.reported = now;
      this.onRedis?.(true, forMs);
    }
    return forMs;
  }

  /**
   * The run's writes refused, and for how long (undefined: they go through). Probes at most every
   * PROBE_MS, one probe at a time, only while connected; reports a refusal about every 5 s (the
   * first after a second) and its end.
   */
  refusal(now = Date.now()): Refusal | undefined {
    const w = this.writes;
    if (w && this.downSince === 0 && !this.probing && now - this.probedAt >= PROBE_MS) {
      this.probedAt = now;
      this.probing = true;
      probeWrites(w.redis, w.runId)
        .then(
          (reason) => (reason === undefined ? this.health.accepted('probe') : this.health.refused('probe', reason)),
          () => undefined,
        )
        .finally(() => (this.probing = false));
    }
    const r = this.health.current(now);
    if (!r) {
      if (this.lastRefusal && this.refusedReported !== 0) this.onRedis?.(false, this.lastRefusal.forMs, this.lastRefusal.reason);
      this.lastRefusal = undefined;
      this.refusedReported = 0;
      return undefined;
    }
    this.lastRefusal = r;
    if (r.forMs >= TICK_MS && now - this.refusedReported >= REPORT_EVERY_MS) {
      this.refusedReported = now;
      this.onRedis?.(true, r.forMs, r.reason);
    }
    return r;
  }

  /**
   * The wait's end when Redis is unreachable longer than `goneMs`, or refuses writes while no
   * result of the run lands for that long.
   */
  check(goneMs: number | undefined, what: string, now = Date.now()): void {
    const downFor = this.tick(now);
    this.refusal(now);
    if (goneMs === undefined) return;
    if (downFor > goneMs) throw new GaxxError('REDIS_UNAVAILABLE', `redis unreachable for ${Math.round(downFor / 1000)} s ${what}`);
    // Stuck: refusals under way (a probe that gets through now and then does not end them) and no result landed.
    const stuck = this.health.stuck(now);
    if (stuck && stuck.forMs > goneMs) throw refusedError(stuck, what);
  }

  /** A result of the run landed: refused writes no longer hold it up (write-health.ts `stuck`). */
  landed(now = Date.now()): void {
    this.health.landed(now);
  }
}
