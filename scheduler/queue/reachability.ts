/**
 * Whether a run's reader can count on Redis: the connection's reachability from its events and
 * from its write probe's answers, and whether Redis takes the run's writes (write-health.ts). Shared by every reader of a run's
 * stream (follow.ts, and waitForRun through it): while Redis is unreachable the reader hears
 * about it (`onRedis`, about every 5 s), and after its bound the wait ends with REDIS_UNAVAILABLE.
 */
import type { Cluster, Redis } from 'ioredis';
import { GaxxError } from '../../proto/index.js';
import { unanswered } from '../redis/redis.js';
import { PROBE_MS, probeWrites, refusedError, WriteHealth, type Refusal } from './write-health.js';

/** The longest a blocking read is awaited before the loop looks at its deadline and Redis again. */
export const TICK_MS = 1000;
const REPORT_EVERY_MS = 5000;
/**
 * A probe unanswered this long means a Redis that does not answer though its connection stays up
 * (the server stopped or paused, a partition that sends no reset): it counts as unreachable from
 * the probe's send. Its connection's events never say so, and every read and write on it waits.
 */
export const STALL_MS = 3000;

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
  /** When the probe still unanswered was sent (0: none is). */
  private probeSentAt = 0;
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
      const since = this.since(Date.now());
      this.downSince = 0;
      this.back(since);
    });
  }

  /** Since when Redis is unreachable: its connection down, or a probe unanswered for STALL_MS (0: reachable). */
  private since(now: number): number {
    const stalled = this.probeSentAt !== 0 && now - this.probeSentAt >= STALL_MS ? this.probeSentAt : 0;
    if (this.downSince === 0 || stalled === 0) return this.downSince || stalled;
    return Math.min(this.downSince, stalled);
  }

  /** Redis reachable again (`since`: when the outage that ends began): says so if the outage was reported. */
  private back(since: number, now = Date.now()): void {
    if (this.since(now) !== 0) return;
    if (since !== 0 && this.reported !== 0) this.onRedis?.(false, now - since);
    this.reported = 0;
  }

  /** Reports an outage about every 5 s (the first after a second); returns how long it lasts. */
  tick(now = Date.now()): number {
    const since = this.since(now);
    if (since === 0) return 0;
    const forMs = now - since;
    if (forMs >= TICK_MS && now - this.reported >= REPORT_EVERY_MS) {
      this.reported = now;
      this.onRedis?.(true, forMs);
    }
    return forMs;
  }

  /**
   * The run's writes refused, and for how long (undefined: they go through). Probes at most every
   * PROBE_MS, one probe at a time, only while connected (a probe unanswered for STALL_MS is an
   * outage, see `since`); reports a refusal about every 5 s (the
   * first after a second) and its end.
   */
  refusal(now = Date.now()): Refusal | undefined {
    const w = this.writes;
    if (w && this.downSince === 0 && !this.probing && now - this.probedAt >= PROBE_MS) {
      this.probedAt = now;
      this.probing = true;
      // A stall lasts from the first probe left unanswered: the next ones do not restart it.
      if (this.probeSentAt === 0) this.probeSentAt = now;
      // An answer, a refusal too, ends a stall; a failed connection is its events' to report, and a
      // probe its connection's request bound cut (unanswered) is the stall going on.
      const answered = (): void => {
        const since = this.since(Date.now());
        this.probeSentAt = 0;
        this.back(since);
      };
      probeWrites(w.redis, w.runId)
        .then(
          (reason) => {
            answered();
            if (reason === undefined) this.health.accepted('probe');
            else this.health.refused('probe', reason);
          },
          (e: unknown) => {
            if (!unanswered(e)) this.probeSentAt = 0;
          },
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
