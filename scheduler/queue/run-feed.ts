/**
 * A small index of enqueued runs, so a reader that did not enqueue a run (the dashboard) can
 * find it and knows how many tasks it has: `{gaxx}:runs` (sorted set, run id scored by enqueue
 * time, trimmed to the newest RUN_INDEX_MAX) and `{gaxx}:run:<runId>:meta` (hash: total,
 * createdAt, fleets, argv0), both kept as long as the run's results.
 */
import type { Cluster, Redis } from 'ioredis';
import { gaxxKey } from '../redis/redis.js';
import { RESULT_TTL_MS } from './results.js';
import { runTasksKey } from './runs.js';
import type { RunSpec } from './task.js';

/** The dashboard's feed of recent runs (its own keys: the run registry and the run index are others). */
export const RUN_FEED_KEY = gaxxKey('ui', 'runs');
/** Runs the index keeps (the oldest are dropped first). */
export const RUN_INDEX_MAX = 1000;

export const runFeedKey = (runId: string): string => gaxxKey('run', runId, 'feed');

/** What the index says about a run. */
export interface RunMeta {
  runId: string;
  total: number;
  createdAt: number;
  fleets: string[];
  /** The first task's command name, for a list of runs. */
  command: string;
}

/** Records a run as it is enqueued. */
export async function indexRun(redis: Redis | Cluster, run: RunSpec, now = Date.now()): Promise<void> {
  const fleets = [...new Set(run.tasks.map((t) => t.fleet ?? ''))].filter(Boolean);
  await redis
    .multi()
    .hset(runFeedKey(run.runId), { total: String(run.tasks.length), createdAt: String(now), fleets: fleets.join(','), command: run.tasks[0]?.argv[0] ?? '' })
    .pexpire(runFeedKey(run.runId), RESULT_TTL_MS)
    .zadd(RUN_FEED_KEY, now, run.runId)
    .zremrangebyrank(RUN_FEED_KEY, 0, -RUN_INDEX_MAX - 1)
    .zremrangebyscore(RUN_FEED_KEY, '-inf', now - RESULT_TTL_MS)
    .exec();
}

/** The newest `limit` runs, newest first; runs whose meta expired are skipped. */
export async function recentRuns(redis: Redis | Cluster, limit = 20): Promise<RunMeta[]> {
  const ids = await redis.zrevrange(RUN_FEED_KEY, 0, limit - 1);
  if (ids.length === 0) return [];
  const tx = redis.multi();
  // A task list is enqueued in batches, each writing its own size as `total`: the run's tasks
  // (runs.ts) count them all.
  for (const id of ids) tx.hgetall(runFeedKey(id)).hlen(runTasksKey(id));
  const replies = (await tx.exec()) ?? [];
  const out: RunMeta[] = [];
  ids.forEach((runId, i) => {
    const h = replies[2 * i]?.[1] as Record<string, string> | undefined;
    const enqueued = Number(replies[2 * i + 1]?.[1] ?? 0);
    if (!h || !h.total) return;
    const total = Math.max(Number(h.total), enqueued);
    out.push({ runId, total, createdAt: Number(h.createdAt), fleets: h.fleets ? h.fleets.split(',') : [], command: h.command ?? '' });
  });
  return out;
}
