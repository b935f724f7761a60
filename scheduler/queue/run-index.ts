/**
 * The run index: a small record per run so runs can be listed, followed and cancelled from any
 * process sharing the queue (`gaxx runs`). One hash per run, `{gaxx}:run:<runId>:info`, and a
 * sorted set `{gaxx}:runs` (score = start time) naming them.
 *
 * Retention: a run's record is kept for RUN_INDEX_TTL_MS (7 days) after its last update; its
 * per-task results and output (the run's stream and done hash, see results.ts) for
 * RESULT_TTL_MS (24 hours). A listed run whose results expired says so.
 *
 * Who writes: the process that submits the run (`gaxx run`) creates the record, counts what it
 * enqueued, heartbeats while it is alive and sets `total` once its input is exhausted; whoever
 * follows the run (`gaxx run` or `gaxx runs wait`) writes counts by outcome and the final state.
 */
import type { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import { ERROR_CODES, isGaxxError, type ErrorCode } from '../../proto/index.js';
import { gaxxKey } from '../redis/redis.js';
import type { TaskOutcome } from './results.js';
import { problems, TaskResultSchema, type IgnoredHandler } from './stored-result.js';
import { LIMITS, RUN_ID } from './task.js';

// Not `{gaxx}:runs`: that is the registry of runs workers serve (queue/runs.ts).
export const RUN_INDEX_KEY = gaxxKey('runs', 'index');
export const RUN_INDEX_TTL_MS = 7 * 24 * 3600 * 1000;
/** A run whose `seen` has not been refreshed for this long has nobody serving it (submitter-gone). */
export const PRODUCER_STALE_MS = 15_000;
/** How often whoever follows a run refreshes its `seen`: three beats within PRODUCER_STALE_MS. */
export const FOLLOW_BEAT_MS = PRODUCER_STALE_MS / 3;

/** running: input still being enqueued or tasks pending; interrupted: its submitter died before all input was enqueued. */
export type RunState = 'running' | 'done' | 'cancelled' | 'interrupted' | 'failed';

/** Why a run failed, as its submitter said it (e.g. FILE_ACCESS: its task list could not be read to its end). */
export interface RunFailure {
  code: ErrorCode;
  message: string;
}

/** The longest failure message a record keeps. */
const FAILURE_MESSAGE_CHARS = 2000;

/** `e` as the failure a run's record keeps. */
export function runFailure(e: unknown): RunFailure {
  const message = isGaxxError(e) ? e.message : e instanceof Error ? e.message : String(e);
  return { code: isGaxxError(e) ? e.code : 'INTERNAL', message: message.slice(0, FAILURE_MESSAGE_CHARS) };
}

/** Counts of finished tasks by outcome. */
export type OutcomeCounts = Partial<Record<TaskOutcome, number>>;

/** One run as the index holds it. */
export interface RunRecord {
  runId: string;
  argv: string[];
  /** The fleet, or empty when the run named agent addresses. */
  fleet: string;
  agents: number;
  mode: 'each-host' | 'tasks';
  startedAt: number;
  /**
   * Last heartbeat of whoever follows the run to its end: its submitter (`gaxx run`), or, once
   * its input is all enqueued, a `gaxx runs wait` or `gaxx run --resume` of it.
   */
  seen: number;
  state: RunState;
  enqueued: number;
  /** Known once the whole input has been enqueued. */
  total: number | null;
  counts: OutcomeCounts;
  finishedAt: number | null;
  /** Why it failed (state `failed`), when its submitter could say: it stopped there, and stays failed whoever follows it. */
  failure?: RunFailure | undefined;
}

export const runInfoKey = (runId: string): string => gaxxKey('run', runId, 'info');

function encode(r: Partial<RunRecord>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(r)) if (v !== undefined) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
}

/** A time (ms epoch) a Date can hold. */
const time = z.number().int().min(0).max(8.64e15);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/**
 * A record as read back from Redis (external input: anyone who can write to Redis can write
 * one). Fields an older gaxx did not write take their defaults; a field of the wrong type makes
 * the whole record invalid.
 */
const RunRecordSchema = z.object({
  runId: z.string().regex(RUN_ID, 'run ids are 1-40 characters of [A-Za-z0-9_.]'),
  argv: z.array(z.string()).max(LIMITS.argvItems).default([]),
  fleet: z
    .string()
    .regex(/^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,62})?$/, 'fleet names are 1-63 characters of [A-Za-z0-9._-]')
    .default(''),
  agents: count.default(0),
  mode: z.enum(['each-host', 'tasks']).default('tasks'),
  startedAt: time.default(0),
  seen: time.default(0),
  state: z.enum(['running', 'done', 'cancelled', 'interrupted', 'failed']).default('running'),
  enqueued: count.default(0),
  total: count.nullable().default(null),
  counts: z.record(TaskResultSchema.shape.outcome, count).default({}),
  finishedAt: time.nullable().default(null),
  failure: z
    .object({
      code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
      message: z.string().max(FAILURE_MESSAGE_CHARS),
    })
    .optional(),
}) satisfies z.ZodType<RunRecord, z.ZodTypeDef, unknown>;

/** The fields held as text, not JSON (encode writes strings as they are). */
const TEXT_FIELDS = new Set(['runId', 'fleet', 'mode', 'state']);

/** A run's record as read, or why it is not one. */
export type ReadRunRecord = { ok: true; record: RunRecord } | { ok: false; why: string };

/** Decodes a record's hash, as `runId`'s; undefined when there is none. */
function decode(runId: string, h: Record<string, string>): ReadRunRecord | undefined {
  if (Object.keys(h).length === 0 || h.runId === undefined) return undefined;
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(h)) {
    if (TEXT_FIELDS.has(k)) fields[k] = v;
    else {
      try {
        fields[k] = JSON.parse(v);
      } catch {
        return { ok: false, why: `${k}: not JSON` };
      }
    }
  }
  const r = RunRecordSchema.safeParse(fields);
  if (!r.success) return { ok: false, why: problems(r.error) };
  if (r.data.runId !== runId) return { ok: false, why: 'runId: names another run' };
  return { ok: true, record: r.data };
}

/** Records a new run, enqueued 0 unless given (and forgets index entries past retention). */
export async function createRunRecord(
  redis: Redis | Cluster,
  r: Omit<RunRecord, 'seen' | 'state' | 'enqueued' | 'counts' | 'finishedAt'> & { enqueued?: number },
): Promise<void> {
  const now = Date.now();
  const rec: RunRecord = { ...r, seen: now, state: 'running', enqueued: r.enqueued ?? 0, counts: {}, finishedAt: null };
  await redis
    .multi()
    .hset(runInfoKey(r.runId), encode(rec))
    .pexpire(runInfoKey(r.runId), RUN_INDEX_TTL_MS)
    .zadd(RUN_INDEX_KEY, r.startedAt, r.runId)
    .zremrangebyscore(RUN_INDEX_KEY, '-inf', now - RUN_INDEX_TTL_MS)
    .exec();
}

/** Updates some fields of a run's record (and refreshes its retention). */
export async function updateRunRecord(redis: Redis | Cluster, runId: string, patch: Partial<Omit<RunRecord, 'runId'>>): Promise<void> {
  await redis.multi().hset(runInfoKey(runId), encode(patch)).pexpire(runInfoKey(runId), RUN_INDEX_TTL_MS).exec();
}

/**
 * Sets the enqueued count to `total` (the submitter's own count: writing it again is harmless,
 * as a retried increment would not be) and refreshes the submitter's heartbeat.
 */
export async function noteEnqueued(redis: Redis | Cluster, runId: string, total: number): Promise<void> {
  await redis
    .multi()
    .hset(runInfoKey(runId), { enqueued: String(total), seen: String(Date.now()) })
    .exec()
    .then((res) => {
      const err = res?.find(([e]) => e !== null)?.[0];
      if (err) throw err;
    });
}

/** One run's record, or why it is not valid; undefined when unknown (or past retention). */
export async function readRunRecord(redis: Redis | Cluster, runId: string): Promise<ReadRunRecord | undefined> {
  return decode(runId, await redis.hgetall(runInfoKey(runId)));
}

/** One run's record, or undefined when unknown (or past retention) or not valid. */
export async function getRunRecord(redis: Redis | Cluster, runId: string): Promise<RunRecord | undefined> {
  const r = await readRunRecord(redis, runId);
  return r?.ok ? r.record : undefined;
}

/** The most recent runs, newest first; a record that is not valid is left out (`onIgnored`). */
export async function listRunRecords(redis: Redis | Cluster, limit = 20, onIgnored?: IgnoredHandler): Promise<RunRecord[]> {
  await redis.zremrangebyscore(RUN_INDEX_KEY, '-inf', Date.now() - RUN_INDEX_TTL_MS);
  const ids = await redis.zrevrange(RUN_INDEX_KEY, 0, Math.max(0, limit - 1));
  const recs = await Promise.all(ids.map((id) => readRunRecord(redis, id)));
  return recs.flatMap((r, i) => {
    if (r && !r.ok) onIgnored?.(ids[i] as string, r.why);
    return r?.ok ? [r.record] : [];
  });
}

/**
 * The runs on `fleet` that may still have tasks to run (`running`, or `interrupted`: its
 * submitter died with tasks queued), newest first: every run the index holds is looked at
 * (the index keeps RUN_INDEX_TTL_MS of runs), 100 records a round trip. `since` (Unix ms): the
 * fleet's creation, when known: a run started before it was on an earlier fleet of the name.
 */
export async function unfinishedFleetRuns(redis: Redis | Cluster, fleet: string, since = 0): Promise<RunRecord[]> {
  const ids = await redis.zrevrange(RUN_INDEX_KEY, 0, -1);
  const out: RunRecord[] = [];
  for (let i = 0; i < ids.length; i += 100) {
    const recs = await Promise.all(ids.slice(i, i + 100).map((id) => getRunRecord(redis, id)));
    for (const r of recs) if (r && r.fleet === fleet && r.startedAt >= since && (r.state === 'running' || r.state === 'interrupted')) out.push(r);
  }
  return out;
}

/**
 * Refreshes a running run's `seen` for a process following it to its end, only once the run's
 * input is all enqueued (its `total` set): until then `seen` is its submitter's alone, whose
 * silence is what makes a run interrupted. A record that is gone or over is left as it is.
 */
export async function noteFollowed(redis: Redis | Cluster, runId: string): Promise<void> {
  await redis.eval(FOLLOWED, 1, runInfoKey(runId), String(Date.now()));
}

const FOLLOWED = `
local total = redis.call('HGET', KEYS[1], 'total')
if redis.call('HGET', KEYS[1], 'state') ~= 'running' or not total or total == 'null' then return 0 end
redis.call('HSET', KEYS[1], 'seen', ARGV[1])
return 1`;

/** Whether a run's submitter, or a process following it to its end, still heartbeats. */
export function submitterAlive(r: RunRecord, now = Date.now()): boolean {
  return now - r.seen < PRODUCER_STALE_MS;
}

/** Adds one outcome to a counts object. */
export function countOutcome(counts: OutcomeCounts, outcome: TaskOutcome): void {
  counts[outcome] = (counts[outcome] ?? 0) + 1;
}

/** The sum of a counts object. */
export function countTotal(counts: OutcomeCounts): number {
  return Object.values(counts).reduce((n, v) => n + (v ?? 0), 0);
}
