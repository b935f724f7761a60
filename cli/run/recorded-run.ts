/**
 * A run recorded before, shown by `gaxx runs wait` and `gaxx run --resume` as its own `gaxx run`
 * showed it: a task list's results each with its record (`input`, kept in Redis with the run,
 * storeTaskRecords), and a fleet's output labelled with its host names, not agent addresses.
 * The results go to the same views (views.ts), through the same result shape.
 */
import {
  createRedis,
  fleetAgents,
  getRunRecord,
  taskRecords,
  waitReady,
  type OutputChunk,
  type RedisSettings,
  type RunRecord,
  type TaskResult,
} from '../../scheduler/index.js';
import type { Output } from '../output.js';
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
  ) {}

  /** For run `runId`, on its own connection: a fleet task list's host names are read first (best effort: addresses when the fleet is gone). */
  static async open(settings: RedisSettings, runId: string, out: Output, colour: boolean): Promise<RecordedRun> {
    const redis = createRedis(settings, 'producer');
    redis.on('error', () => undefined);
    try {
      await waitReady(redis, 5000, settings.display);
      const rec = await getRunRecord(redis, runId).catch(() => undefined);
      const agents = rec?.mode === 'tasks' && rec.fleet ? await fleetAgents(redis, rec.fleet).catch(() => []) : [];
      return new RecordedRun(redis, runId, out, colour, new Map(agents.map((a) => [a.address, a.host])));
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
    this.view = recordedRunView(this.out, this.colour, rec.mode === 'each-host' ? hosts : undefined, this.hostNames);
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
    // The results are what counts: without their records (Redis gone, or a run older than them) they are shown as they are.
    const records = await taskRecords(
      this.redis,
      this.runId,
      batch.map(([r]) => r.taskId),
    ).catch(() => []);
    batch.forEach(([r, output, liveShown, pending], i) => this.view?.result(r, output, liveShown, records[i], pending));
  }
}
