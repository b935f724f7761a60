/**
 * Writes a run must land at its end, and bounds on what its end may wait for: shared by every way
 * a run ends (run.ts's runAndWait and resumeRun, a task list's stream, a followed run).
 */
import type { Cluster, Redis } from 'ioredis';
import { RECONNECT_MS, whileAway, type RedisSettings } from '../redis/redis.js';
import { FOLLOW_BEAT_MS, noteFollowed, updateRunRecord } from './run-index.js';
import { RUN_TOUCH_MS, touchRun } from './runs.js';

/**
 * A read or write a run must not lose to its connection coming back from an outage the run's
 * wait rode out (Redis answered the wait, this connection may still wait out its backoff): a
 * cancel's writes, and the run's end (its record, its cancel flag). Tried again for RECONNECT_MS,
 * or until `stop` (the wait's end); once, and answered within CLEANUP_MS, when Redis was last
 * heard unreachable (`redisDown`: a Redis that does not answer would hold it its connection's
 * whole request bound).
 */
export function mustLand<T>(redis: Redis | Cluster, op: () => Promise<T>, o: { redisDown?: boolean; what: string; stop?: AbortSignal }): Promise<T> {
  return whileAway(redis, op, {
    forMs: o.redisDown ? 0 : RECONNECT_MS,
    what: o.what,
    ...(o.stop ? { stop: o.stop } : {}),
    ...(o.redisDown ? { attemptMs: CLEANUP_MS } : {}),
  });
}

/**
 * While a process follows a run to its end (its `gaxx run`, `run --resume`, `runs wait`): the
 * run's registry entry is refreshed (a daemon does not forget the run, it does not expire), and so
 * is its record's `seen` (noteFollowed: `gaxx runs` shows it running, not submitter-gone, however
 * long its tasks take). Returns the timer, cleared at the wait's end.
 */
export function keepFollowing(redis: Redis | Cluster, runId: string): NodeJS.Timeout {
  const beat = (): void => {
    void touchRun(redis, runId).catch(() => undefined);
    void noteFollowed(redis, runId).catch(() => undefined);
  };
  return setInterval(beat, Math.min(RUN_TOUCH_MS, FOLLOW_BEAT_MS));
}

/** Redis clean-up after the wait (withdraw, forget) gets this long, then is left. */
export const CLEANUP_MS = 1000;
/**
 * Writes `patch` to a run's record at its end (mustLand), given up after the clean-up's bound, and
 * a reconnect's too unless Redis was last heard unreachable; never throws.
 */
export async function landEndRecord(
  redis: Redis | Cluster,
  runId: string,
  patch: Parameters<typeof updateRunRecord>[2],
  o: { redisDown?: boolean; what: string },
): Promise<void> {
  await bounded(
    mustLand(redis, () => updateRunRecord(redis, runId, patch), o).catch(() => undefined),
    o.redisDown ? CLEANUP_MS : RECONNECT_MS + CLEANUP_MS,
  );
}
/** Default bound on a Redis outage during a wait. */
export const REDIS_GONE_MS = 60_000;

/** How long a wait rides out an unreachable Redis: its own option, else its settings' (`--redis-gone-ms`), else REDIS_GONE_MS. */
export function goneMsOf(o: { redisGoneMs?: number; settings: RedisSettings }): number {
  return o.redisGoneMs ?? o.settings.goneMs ?? REDIS_GONE_MS;
}

/** Resolves with `p`'s value, or undefined after `ms` (the work goes on, unobserved). */
export async function bounded<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)));
  try {
    return await Promise.race([p.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
