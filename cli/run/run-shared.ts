/** What the modes of `gaxx run` (execute.ts, task-list-run.ts) share: the command's context, a started run, its notes and views. */
import { join } from 'node:path';
import { counted, GaxxError, type TaskSigner } from '../../proto/index.js';
import type { agentConnector, createRedis, EndedEarly, RedisSettings, RedisTarget } from '../../scheduler/index.js';
import type { GaxxConfig } from '../config.js';
import { onAbort } from '../abort-fanout.js';
import { stopSayer } from '../command.js';
import type { Io, Output } from '../output.js';
import type { IgnoredReport } from './ignored.js';
import type { RunPlan } from './plan.js';
import type { ProgressLine } from './progress.js';
import { ResultsDirView } from './results-dir.js';
import type { RunSummary } from './summary.js';
import { timingsText, type RunClock } from './timings.js';
import { HumanView, JsonView, Views, type RunView } from './views.js';

/** What `gaxx run` is carried out with. */
export interface ExecuteContext {
  config: GaxxConfig;
  out: Output;
  io: Io;
  signal: AbortSignal;
  /**
   * The Redis the run uses, being got by the caller (the run command starts getting it before it
   * loads execute.ts: an embedded redis-server it starts then boots meanwhile); released by the run.
   */
  redis: Promise<RedisTarget>;
}

/** What a run says while Redis is away (or refuses writes: `refused`, its reason), and when it is back. */
export function redisNote(isDown: boolean, ms: number, refused?: string): string {
  const s = Math.round(ms / 1000);
  if (refused !== undefined) return isDown ? `gaxx: Redis refuses writes for ${s}s: ${refused}` : `gaxx: Redis takes writes again after ${s}s`;
  return isDown ? `gaxx: Redis unreachable for ${s}s` : `gaxx: Redis is back after ${s}s`;
}

/**
 * What a run says when its wait ended early: why, then (Redis refusing writes) where the embedded
 * Redis keeps its data, and how the tasks without a result are collected once Redis is fixed.
 */
export function endedNote(ended: EndedEarly, runId: string, config: GaxxConfig, rest = ''): string {
  // Tasks whose job failed for good will not run again: saying they stay queued would be false.
  const failed = ended.failed ? `; ${counted(ended.failed, 'task')} failed for good (attempts ran out: reported above, never to run again)` : '';
  const others = ended.failed ? 'the other tasks without a result' : 'tasks without a result';
  // Nothing of the run is left in Redis: no task stays queued, none can be resumed.
  if (ended.code === 'REDIS_DATA_LOST') return `gaxx: ${ended.message}${rest}; nothing of it is left to resume or collect: run it again if its tasks must run`;
  if (ended.refused === undefined) return `gaxx: ${ended.message}${rest}${failed}; ${others} stay queued: gaxx run --resume ${runId}`;
  const where = config.redis.url === undefined ? `; the embedded Redis keeps its data in ${join(config.paths.stateDir, 'redis')}` : '';
  return `gaxx: ${ended.message}${where}${rest}${failed}; ${others} stay queued: once Redis takes writes again, collect them with gaxx runs wait ${runId} (or gaxx run --resume ${runId})`;
}

export type RedisClient = ReturnType<typeof createRedis>;

/** What a run says of its first stop, once it knows (stopNotes). */
export interface StopNotes {
  /** From the run, when the stop reached it: whether it cancels anything. */
  onStop: (cancelling: boolean) => void;
  /** The run's wait saw every task's result: a stop after it has nothing to cancel. */
  ended: () => void;
  /**
   * The run listens to the stop now (RunAndWaitOptions.onListening): it says what a stop does
   * (onStop). A stop before, while the run connects and enqueues, is said at once: `stopping` (a
   * Redis that does not answer would otherwise keep the note back as long as it does not).
   */
  listening: () => void;
  /**
   * At the run's end: says a stop the run was not asked (before it was under way, or after its
   * wait), if any; first waits for the results still buffered for stdout to be written out (or
   * for a stop), so that a reader that leaves before they are is such a stop (Output.flushed).
   */
  settle: () => Promise<void>;
  /**
   * Rejects (CANCELLED) when a stop came before the run listened to it and the run still does not
   * STOP_GRACE_MS later: Redis has not answered the run's first requests (a stopped or paused
   * server), and the run ends rather than wait for it (the caller says what it leaves behind).
   * Never settles otherwise.
   */
  unheard: Promise<never>;
}

/** How long a run stopped before it listens waits for Redis to answer its first requests, then ends (StopNotes.unheard). */
export const STOP_GRACE_MS = 5000;

const NOTHING_TO_CANCEL = 'every task already has its result: nothing to cancel';

/**
 * The note on the first stop of a run (Ctrl-C, a closed stdout: `gaxx run` says it itself,
 * Command.saysStop), once what it does is known: cancelling, or nothing when every task
 * already had its result.
 */
export function stopNotes(ctx: Pick<ExecuteContext, 'out' | 'signal'>): StopNotes {
  let ended = false;
  const say = stopSayer(ctx.out, ctx.signal);
  let giveUp: (e: GaxxError) => void = () => undefined;
  const unheard = new Promise<never>((_, reject) => (giveUp = reject));
  unheard.catch(() => undefined);
  let grace: NodeJS.Timeout | undefined;
  let untie = onAbort(ctx.signal, () => {
    say('stopping');
    grace = setTimeout(
      () => giveUp(new GaxxError('CANCELLED', `Redis has not answered the run's requests for ${STOP_GRACE_MS / 1000} s since the stop`)),
      STOP_GRACE_MS,
    );
  });
  const listening = (): void => {
    untie();
    untie = () => undefined;
    clearTimeout(grace);
  };
  return {
    onStop: (cancelling) => say(cancelling ? 'cancelling' : NOTHING_TO_CANCEL),
    ended: () => (ended = true),
    listening,
    unheard,
    settle: async () => {
      listening();
      await ctx.out.flushed(ctx.signal);
      say(ended ? NOTHING_TO_CANCEL : 'stopping');
    },
  };
}

/** A run under way: its id, its Redis, its signer and its agents' connector (executeRun starts it). */
export interface Started {
  runId: string;
  settings: RedisSettings;
  /** The run's ready producer connection (the caller closes it). */
  redis: RedisClient;
  connect: ReturnType<typeof agentConnector>;
  /** Starts connecting to the run's agents (called when this process works on the run itself). */
  prewarm: () => void;
  signer: TaskSigner;
  clock: RunClock;
  /** Results read from Redis that were skipped (warned about once the run ends). */
  ignored: IgnoredReport;
  /** A fleet run's host names by agent address (empty for --agent): output is labelled by them. */
  hostNames: ReadonlyMap<string, string>;
  /** Says what a stop of the run does, once the run knows (stopNotes). */
  stop: StopNotes;
}

/**
 * Shows the summary (with where the time went, under --timings: in the JSON summary, or as a
 * line on stderr).
 */
export function endRun(view: RunView, ctx: ExecuteContext, summary: RunSummary, timings: { clock: RunClock; inProcess: boolean } | undefined): void {
  const s = timings ? { ...summary, timings: timings.clock.finish(timings.inProcess) } : summary;
  view.end(s);
  if (s.timings && !ctx.out.json) ctx.out.note(timingsText(s.timings));
}

/**
 * `labels`: each task's host, for a run of one task per host (its output is labelled, its results
 * folder named, by them); `hostNames`: a fleet's host names by agent address, which label a task
 * list's output.
 */
export function viewsFor(
  plan: RunPlan,
  ctx: ExecuteContext,
  progress: ProgressLine | undefined,
  labels: ReadonlyMap<string, string> | undefined,
  hostNames: ReadonlyMap<string, string>,
): Views {
  const human = { colour: ctx.io.colour === true, progress, hostNames, ...(labels ? { eachHostLabels: labels } : {}) };
  const views: RunView[] = [ctx.out.json ? new JsonView(ctx.out) : new HumanView(ctx.out, human)];
  if (plan.resultsDir) views.push(new ResultsDirView(plan.resultsDir, labels));
  return new Views(views, ctx.out);
}
