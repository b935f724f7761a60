/**
 * Whether Redis takes the writes a run depends on. A Redis can stay connected and answer reads
 * while it refuses every write: `MISCONF` (it could not write its AOF or RDB, e.g. a full disk),
 * `OOM` (over `maxmemory` with `noeviction`), `READONLY` (a replica). Nothing then breaks the
 * connection, so an outage bound alone never ends a wait: no result can be published, and a
 * reader would wait for ever. A run's waiter therefore learns of refusals from two sources, each
 * kept apart (one's success does not clear the other's refusal): a cheap write probe on the run's
 * own key (`probe`), and its in-process worker's refused result writes.
 */
import type { Cluster, Redis } from 'ioredis';
import { GaxxError, isGaxxError, type ErrorCode } from '../../proto/index.js';
import { gaxxKey } from '../redis/redis.js';

/** Redis's own reason when `e` is an error reply of the server (also inside a refused MULTI), else undefined. */
export function refusalReason(e: unknown): string | undefined {
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    if (c.name === 'ReplyError') return c.message;
    const inner = (c as { previousErrors?: Error[] }).previousErrors?.find((p) => p.name === 'ReplyError');
    if (inner) return inner.message;
  }
  return undefined;
}

/** What to do about a refusal, from Redis's reason. */
export function refusalHint(reason: string): string {
  if (/^MISCONF\b/.test(reason)) return 'free disk space where Redis keeps its data';
  if (/^OOM\b/.test(reason)) return "free Redis memory or raise its 'maxmemory'";
  if (/^READONLY\b/.test(reason)) return 'point gaxx at the primary, not a replica';
  return 'fix what Redis reports';
}

/** One refusal as it stands: since when, and Redis's latest reason. */
export interface Refusal {
  forMs: number;
  reason: string;
}

/**
 * The end of a wait on a Redis that refused writes too long: REDIS_UNAVAILABLE (what the run
 * needs of Redis is gone, as when it is unreachable), with Redis's reason in the message and in
 * `details.refused`.
 */
export function refusedError(r: Refusal, what: string): GaxxError {
  return new GaxxError('REDIS_UNAVAILABLE', `redis refuses writes for ${Math.round(r.forMs / 1000)} s ${what}: ${r.reason} (${refusalHint(r.reason)})`, {
    details: { refused: r.reason },
  });
}

/** Why a wait ended before every task had its result; `refused`: Redis refused writes, with its reason. */
export interface EndedEarly {
  code: ErrorCode;
  message: string;
  refused?: string;
  /** Tasks without a result whose job failed for good (they will not run again; each is reported so). */
  failed?: number;
}

/**
 * Whether `e` ends a run's wait early, each task without a result then reported `unknown`
 * (rather than failing the wait): its deadline passed, Redis stayed away or refused writes, or
 * Redis lost the run's records.
 */
export function endsWaitEarly(e: unknown): e is GaxxError {
  return isGaxxError(e, 'DEADLINE_EXCEEDED') || isGaxxError(e, 'REDIS_UNAVAILABLE') || isGaxxError(e, 'REDIS_DATA_LOST');
}

/** An error that ended a wait early, as its outcome says it. */
export function endedBy(e: GaxxError): EndedEarly {
  const refused = e.details?.refused;
  return { code: e.code, message: e.message, ...(typeof refused === 'string' ? { refused } : {}) };
}

/**
 * How long writes must be taken without a refusal before a refusal episode is over. A Redis at
 * its memory limit takes a tiny probe now and then while every result write (whose own size
 * pushes it over) is refused: a single write that went through must not restart the bound.
 */
export const SETTLE_MS = 10_000;

/**
 * Refusals per source (e.g. 'probe', 'worker'); the longest-lasting one is the run's. A source's
 * refusal ends only once its writes went through for SETTLE_MS with no refusal between (a
 * refusal meanwhile keeps the episode, and its start, going).
 */
export class WriteHealth {
  private readonly refusals = new Map<string, { since: number; reason: string; okSince?: number }>();
  private landedAt = Date.now();

  /** `source`'s write was refused with `reason`. */
  refused(source: string, reason: string, now = Date.now()): void {
    const r = this.live(source, now);
    this.refusals.set(source, { since: r?.since ?? now, reason });
  }

  /** `source`'s write went through: its refusal (if any) ends once writes went through for SETTLE_MS. */
  accepted(source: string, now = Date.now()): void {
    const r = this.live(source, now);
    if (r && r.okSince === undefined) r.okSince = now;
  }

  /** A result of the run landed (the run makes progress): the bound counts from here. */
  landed(now = Date.now()): void {
    this.landedAt = now;
  }

  /** `source`'s refusal unless it has settled (then it is forgotten). */
  private live(source: string, now: number): { since: number; reason: string; okSince?: number } | undefined {
    const r = this.refusals.get(source);
    if (r?.okSince !== undefined && now - r.okSince >= SETTLE_MS) {
      this.refusals.delete(source);
      return undefined;
    }
    return r;
  }

  /** The longest-lasting refusal, undefined when no source's refusal is under way. */
  current(now = Date.now()): Refusal | undefined {
    let worst: Refusal | undefined;
    for (const source of [...this.refusals.keys()]) {
      const r = this.live(source, now);
      if (r && (!worst || now - r.since > worst.forMs)) worst = { forMs: now - r.since, reason: r.reason };
    }
    return worst;
  }

  /**
   * How long the run has been stuck on refused writes: the refusal episode under way, counted
   * from when it began or from the last result that landed since, whichever is later (a run
   * whose results still land is not stuck). Undefined when no refusal is under way.
   */
  stuck(now = Date.now()): Refusal | undefined {
    const r = this.current(now);
    return r && { forMs: Math.min(r.forMs, now - this.landedAt), reason: r.reason };
  }
}

/** How often a waiter probes (a no-op write: nothing stored, nothing in the AOF). */
export const PROBE_MS = 1000;

/**
 * A write that changes nothing: SETRANGE of an empty string on a key that does not exist creates
 * nothing, yet it is a write that may use memory, so Redis refuses it for every reason it
 * refuses writes (MISCONF, OOM, READONLY, a missing ACL write permission). Resolves to Redis's
 * reason when refused, undefined when it went through; a connection failure rejects (that is
 * an outage, which the connection's events report).
 */
export async function probeWrites(redis: Redis | Cluster, runId: string): Promise<string | undefined> {
  try {
    await redis.setrange(gaxxKey('run', runId, 'probe'), 0, '');
    return undefined;
  } catch (e) {
    const reason = refusalReason(e);
    if (reason === undefined) throw e;
    return reason;
  }
}
