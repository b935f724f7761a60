/**
 * A run recorded before, shown by `gaxx runs wait` and `gaxx run --resume` as its own `gaxx run`
 * showed it: a task list's results each with its record (`input`, kept in Redis with the run,
 * storeTaskRecords), and a fleet's output labelled with its host names, not agent addresses.
 * The results go to the same views (views.ts), through the same result shape; with `--results
 * DIR`, also to the folders its own `--results` would have written (named by those records, or by
 * the hosts of a run of one task per host), those already there kept (prepareRunResultsDir).
 */
import { GaxxError } from '../../proto/index.js';
import {
  createRedis,
  fleetAgents,
  getRunRecord,
  keptTaskRecords,
  requireRun,
  resultNamesKept,
  waitReady,
  type OutputChunk,
  type RedisSettings,
  type RunRecord,
  type TaskResult,
} from '../../scheduler/index.js';
import type { Output } from '../output.js';
import { prepareRunResultsDir, ResultsDirView, type RunResultsDir } from './results-dir.js';
import type { RedisClient } from './run-shared.js';
import { recordedRunView, type Views } from './views.js';

/** One result as a follower reports it. */
type Shown = [r: TaskResult, output: OutputChunk[], liveShown: boolean, pending: boolean | undefined];

/** The view of a recorded run, made once its record is known (onStart); results reach it in order, with their records. */
export class RecordedRun {
  view: Views | undefined;
  private queued: Shown[] = [];
  private showing: Promise<void> = Promise.resolve();
  private tasks = false;

  private constructor(
    /** A ready connection: the follow uses it too (its `redis`); closed by close(). */
    readonly redis: RedisClient,
    private readonly runId: string,
    private readonly out: Output,
    private readonly colour: boolean,
    private readonly hostNames: ReadonlyMap<string, string>,
    private readonly results: RunResultsDir | undefined,
  ) {}

  /**
   * For run `runId`, on its own connection: a fleet task list's host names are read first (best
   * effort: addresses when the fleet is gone). `resultsDir`: checked and prepared before anything
   * of the run is followed (resultsDirOf). `stop` ends the wait for Redis to be ready (waitReady).
   */
  static async open(settings: RedisSettings, runId: string, out: Output, colour: boolean, resultsDir?: string, stop?: AbortSignal): Promise<RecordedRun> {
    const redis = createRedis(settings, 'producer');
    redis.on('error', () => undefined);
    try {
      await waitReady(redis, 5000, settings.display, stop);
      const rec = await getRunRecord(redis, runId).catch(() => undefined);
      const agents = rec?.mode === 'tasks' && rec.fleet ? await fleetAgents(redis, rec.fleet).catch(() => []) : [];
      const results = resultsDir === undefined ? undefined : await resultsDirOf(redis, runId, resultsDir);
      return new RecordedRun(redis, runId, out, colour, new Map(agents.map((a) => [a.address, a.host])), results);
    } catch (e) {
      redis.disconnect();
      throw e;
    }
  }

  close(): void {
    this.redis.disconnect();
  }

  /** The run's header; `hosts`: each task's host, for a run of one task per host. */
  start(rec: Pick<RunRecord, 'argv' | 'fleet' | 'mode'>, hosts: ReadonlyMap<string, string> | undefined): Views {
    this.tasks = rec.mode === 'tasks';
    const each = rec.mode === 'each-host';
    // A run of one task per host names its folders by its hosts (none known: each is not written).
    const results = this.results && new ResultsDirView(this.results.root, each ? (hosts ?? new Map()) : undefined, this.results.written);
    this.view = recordedRunView(this.out, this.colour, each ? hosts : undefined, this.hostNames, results);
    this.view.start({ runId: this.runId, argv: rec.argv, fleet: rec.fleet, mode: rec.mode });
    return this.view;
  }

  /** A result: a task list's waits for its record, read with those of the results queued meanwhile (one round trip). */
  result(r: TaskResult, output: OutputChunk[], liveShown: boolean, pending?: boolean): void {
    if (!this.tasks) return this.view?.result(r, output, liveShown, undefined, pending);
    this.queued.push([r, output, liveShown, pending]);
    if (this.queued.length === 1) this.showing = this.showing.then(() => this.show());
  }

  /** Every result shown (before the summary). */
  async shown(): Promise<void> {
    await this.showing;
  }

  private async show(): Promise<void> {
    const batch = this.queued.splice(0);
    // The results are what counts: without their records (Redis gone, or a run older than them)
    // they are shown as they are; only their folders, which the records name, cannot be written.
    let unnamed: GaxxError | undefined;
    const records = await keptTaskRecords(
      this.redis,
      this.runId,
      batch.map(([r]) => r.taskId),
    ).then(
      (kept) => {
        if (!kept) unnamed = new GaxxError('NOT_FOUND', 'its record, which names its folder, is no longer kept (24 hours), so no folder is written for it');
        return kept ?? [];
      },
      (e: unknown) => {
        unnamed = new GaxxError(
          'UNAVAILABLE',
          `its record, which names its folder, could not be read (${e instanceof Error ? e.message : String(e)}), so no folder is written for it`,
        );
        return [];
      },
    );
    batch.forEach(([r, output, liveShown, pending], i) => this.view?.result(r, output, liveShown, records[i], pending, unnamed));
  }
}

/**
 * `--results DIR` for run `runId`, checked before anything is written: the run must be known, and
 * what names its folders still kept (a task list's records, a run of one task per host's hosts;
 * both expire with its results): without them no folder could be named as its own gaxx run named
 * it, so nothing is written. Then DIR is checked and prepared (prepareRunResultsDir).
 */
async function resultsDirOf(redis: RedisClient, runId: string, dir: string): Promise<RunResultsDir> {
  const rec = await requireRun(redis, runId);
  // A task list that enqueued nothing (its gaxx run died first, its input unreadable) has no folder to write.
  const named = (rec.mode === 'tasks' && rec.enqueued === 0) || (await resultNamesKept(redis, runId, rec.mode));
  if (!named) {
    const what = rec.mode === 'tasks' ? "its task list's records" : "its tasks' hosts";
    throw new GaxxError(
      'NOT_FOUND',
      `--results: run ${runId}'s folders are named after ${what}, which are no longer kept (they expire 24 hours after the run, with its results): its folders cannot be named as its gaxx run named them, so none is written`,
    );
  }
  return prepareRunResultsDir(dir, runId);
}
