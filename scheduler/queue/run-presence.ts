/**
 * Whether a run's records are still in Redis while its results are waited for. A Redis that
 * loses its data (FLUSHALL, or a restart without persistence: no AOF, no snapshot, or a replica
 * promoted empty) drops the run's jobs, its registry entry and its results at once: the workers
 * that held its jobs find their locks gone and leave them (job-lock.ts), nobody publishes those
 * results again, and a wait for them would wait for ever. Keys of the run are no sign: its
 * workers' live output, BullMQ's own bookkeeping and a task list's later batches write them again.
 *
 * So every reader of a run's stream (followRun) keeps a key of its own there, `{gaxx}:follow:<id>`
 * (24 h, renewed every PRESENCE_MS, one look at a time, never while Redis is away, removed when
 * the follow ends), which nobody else writes. When it is gone, Redis lost data since the last
 * look; the reader then asks about the tasks it still waits for (`outstanding`, at most
 * MAX_ASKED of them): one with neither its result (the run's done hash) nor its job is lost, and
 * then the run is (`lost`: REDIS_DATA_LOST). When none is (the key alone went), the key is made
 * again. A reader that did not start the run (`gaxx runs wait`: `registered`) asks besides
 * whether the run's registry entry and task list are gone, at its first look too, before it
 * makes the key: the loss may have come between its read of the run and its follow. It asks
 * about its tasks as well, once its key went: a task list's gaxx run that still enqueues writes
 * the run's registry entry and task list again with its next batch, lost tasks or not.
 */
import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { GaxxError } from '../../proto/index.js';
import { gaxxKey } from '../redis/redis.js';
import { RESULT_TTL_MS, runDoneKey } from './results.js';
import { bounded } from './run-landing.js';
import { runJobKey, runMetaKey, runTasksKey } from './runs.js';
import { jobIdFor } from './task.js';

/** How often a reader looks whether Redis kept its data. */
export const PRESENCE_MS = 2000;
/** How long the end of a follow waits for its key's removal. */
const CLOSE_MS = 1000;
/** The most tasks asked about once the reader's key is gone. */
const MAX_ASKED = 1000;

export class RunPresence {
  private readonly key = gaxxKey('follow', randomBytes(8).toString('hex'));
  private at = 0;
  private looking = false;
  private made = false;
  private gone: string[] = [];

  /**
   * `outstanding`: the tasks the reader still waits for; `registered`: the run's registry entry
   * and task list are asked about too, at the first look as well.
   */
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly runId: string,
    private readonly ask: { outstanding?: () => Iterable<string>; registered?: boolean },
  ) {}

  /** Looks again when PRESENCE_MS passed since the last look (in the background). */
  tick(now = Date.now()): void {
    if (this.looking || this.gone.length > 0 || now - this.at < PRESENCE_MS || this.redis.status !== 'ready') return;
    this.at = now;
    this.looking = true;
    this.look()
      .catch(() => undefined)
      .finally(() => (this.looking = false));
  }

  private async look(): Promise<void> {
    if (this.made && (await this.redis.pexpire(this.key, RESULT_TTL_MS)) === 1) return;
    // A first look asks about the run's registration only: Redis may have lost the run before the
    // reader's key was made (`gaxx runs wait` reads the run, then follows it). Not about its
    // tasks: a cancel may be withdrawing their jobs then, before it reports them.
    if (this.made || this.ask.registered) this.gone = await this.lostTasks();
    if (this.gone.length === 0) {
      await this.redis.set(this.key, this.runId, 'PX', RESULT_TTL_MS);
      this.made = true;
    }
  }

  /** ['*'] when `registered` and the run's registry entry and task list are gone; else, once the key was made, the outstanding tasks with neither a result nor a job. */
  private async lostTasks(): Promise<string[]> {
    if (this.ask.registered && (await this.redis.exists(runMetaKey(this.runId), runTasksKey(this.runId))) === 0) return ['*'];
    if (!this.made || !this.ask.outstanding) return [];
    const ids: string[] = [];
    for (const id of this.ask.outstanding()) if (ids.push(id) >= MAX_ASKED) break;
    if (ids.length === 0) return [];
    const results = await this.redis.hmget(runDoneKey(this.runId), ...ids);
    const p = this.redis.pipeline();
    for (const id of ids) p.exists(runJobKey(this.runId, jobIdFor(this.runId, id)));
    const jobs = (await p.exec()) ?? [];
    return ids.filter((_, i) => results[i] === null && jobs[i]?.[0] === null && jobs[i]?.[1] === 0);
  }

  /** REDIS_DATA_LOST once some task the reader waits for is known to be gone with its job, else undefined. */
  lost(): GaxxError | undefined {
    if (this.gone.length === 0) return undefined;
    const which = this.gone[0] === '*' ? '' : ` (${this.gone.length} of the tasks it waits for, e.g. task ${this.gone[0]})`;
    return new GaxxError(
      'REDIS_DATA_LOST',
      `run ${this.runId}'s records are gone from Redis${which}: it was flushed, or restarted without its data; the results of those tasks cannot come back, and they may have run`,
    );
  }

  /** Removes the reader's key: best effort, within CLOSE_MS (else it expires in a day). */
  async close(): Promise<void> {
    if (this.made && this.redis.status === 'ready') await bounded(this.redis.del(this.key), CLOSE_MS);
  }
}
