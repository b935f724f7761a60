/**
 * Carries out a checked `gaxx run` plan: resolves the hosts (a fleet through the scheduler's
 * fleet registry: an unknown fleet is NOT_FOUND before anything is enqueued), opens the task
 * list, then either one task per host through runAndWait (each-host) or a streamed task list
 * through streamRun, and presents results through the views. Every run is in the run index.
 */
import type { Readable } from 'node:stream';
import { GaxxError, isGaxxError } from '../../proto/index.js';
import {
  agentConnector,
  warmingConnector,
  WORKER_CONCURRENCY,
  landEndRecord,
  mustLand,
  createRedis,
  createRunRecord,
  fleetEndpoint,
  newRunId,
  resumeRun,
  runAndWait,
  waitReady,
  countOutcome,
  isCancelled,
  requestCancel,
  type OutcomeCounts,
  type RedisTarget,
  type TaskInput,
} from '../../scheduler/index.js';
import { agentClientOptions } from '../config.js';
import { operatorSigner } from '../operator-credentials.js';
import { resolveFleetAgents } from '../fleet/fleet-directory.js';
import { schedulerCredentialSource, type SourceOptions } from '../scheduler-credentials.js';
import type { RunPlan } from './plan.js';
import { IgnoredReport } from './ignored.js';
import { prepareResultsDir } from './results-dir.js';
import { cancelledNote, endedState, failedNote, INTERRUPTED, noteUnreachable, summarize, summaryExitCode } from './summary.js';
import { openTaskList } from './task-source.js';
import { RunClock } from './timings.js';
import { endedNote, endRun, redisNote, stopNotes, viewsFor, type ExecuteContext, type RedisClient, type Started, type StopNotes } from './run-shared.js';
import { recordedRunView, type Views } from './views.js';
import { RecordedRun } from './recorded-run.js';
import { runTaskList } from './task-list-run.js';

export type { ExecuteContext } from './run-shared.js';

/**
 * At most this many agents are connected to ahead of the run: as many as the in-process worker
 * runs tasks at once, so a run over a huge fleet does not open every connection (and file
 * descriptor) at the same moment.
 */
const PREWARM_MAX = WORKER_CONCURRENCY;

/** A task id from a host: its position plus the host made id-safe. */
export function taskIdFor(index: number, host: string): string {
  return `${index}-${host.replace(/[^A-Za-z0-9._-]+/g, '_')}`.slice(0, 80);
}

/** One task per host (a fleet's host names, or addresses), pinned to it. */
export function eachHostTasks(plan: RunPlan, hosts: readonly string[]): TaskInput[] {
  return hosts.map((host, i) => ({
    taskId: taskIdFor(i, host),
    ...(plan.fleet ? { fleet: plan.fleet } : { agents: [host] }),
    target: { host },
    argv: plan.argv,
    ...plan.common,
  }));
}

/**
 * Where a run says that its scheduler certificate was re-issued (revoked, expired) or could not
 * be: the in-process worker asks for it before every call, so a revocation during a long run is
 * met with a new certificate too.
 */
function credentialNotes(ctx: ExecuteContext): SourceOptions {
  const note = (text: string): void => ctx.out.note(`gaxx: ${text}`);
  return { note, error: note };
}

/** The fleet's agents; NOT_FOUND when neither the registry nor this home knows the fleet. */
async function resolveFleet(ctx: ExecuteContext, redis: RedisClient, fleet: string): Promise<{ host: string; address: string }[]> {
  const agents = await resolveFleetAgents(ctx.config, redis, fleet, ctx.out);
  if (agents.length === 0) throw new GaxxError('NOT_FOUND', `unknown fleet '${fleet}' (no agents registered for it)`);
  return agents;
}

/** Runs the plan; resolves to the exit code. */
export async function executeRun(plan: RunPlan, ctx: ExecuteContext): Promise<number> {
  const clock = new RunClock();
  const targetP = ctx.redis;
  let input: Readable | undefined;
  const stop = stopNotes(ctx);
  try {
    // Written under its real path from here on: a symlink to it is followed once, when it is checked.
    if (plan.resultsDir) plan = { ...plan, resultsDir: prepareResultsDir(plan.resultsDir) };
    input = plan.tasks !== undefined ? openTaskList(plan.tasks, ctx.io) : undefined;
    const target = await targetP;
    clock.mark('redisMs');
    const creds = await schedulerCredentialSource(ctx.config.paths, credentialNotes(ctx));
    // One connection for the fleet, the run's record and the queue (the wait's blocking reads
    // and an in-process worker still get their own).
    const redis = createRedis(target.settings, 'producer');
    redis.on('error', () => undefined);
    const runId = newRunId();
    try {
      await waitReady(redis, 5000, target.settings.display, ctx.signal);
      const work = runOn(plan, ctx, { runId, settings: target.settings, redis, creds, clock, stop, input });
      return await unlessUnheard(stop, work, (why) => {
        // Behind the run's own requests on this connection: Redis runs it after whatever of them it takes.
        void requestCancel(redis, runId).catch(() => undefined);
        return `run ${runId}: ${why}: stopped without waiting longer; a cancel goes to Redis behind its requests, so none of its tasks runs once Redis answers`;
      });
    } finally {
      redis.disconnect();
    }
  } finally {
    await stop.settle();
    if (input && input !== ctx.io.stdin) input.destroy();
    // Also when the run was refused before it used Redis (a results dir in use, no task list).
    await released(targetP);
  }
}

/** What a run needs once its connection is ready (executeRun): what it starts with, and what it makes the rest of Started from. */
type RunSetup = Pick<Started, 'runId' | 'settings' | 'redis' | 'clock' | 'stop'> & {
  creds: Awaited<ReturnType<typeof schedulerCredentialSource>>;
  input: Readable | undefined;
};

/** The run, from its fleet's lookup to its summary. */
async function runOn(plan: RunPlan, ctx: ExecuteContext, { runId, settings, redis, creds, clock, stop, input }: RunSetup): Promise<number> {
  const fleetHosts = plan.fleet ? await resolveFleet(ctx, redis, plan.fleet) : undefined;
  const signer = operatorSigner(ctx.config.paths.operatorCertDir, ctx.config.paths.caDir);
  // Without a daemon, this process connects to the run's agents while it enqueues (prewarm).
  const warming = warmingConnector(agentConnector(creds, agentClientOptions(ctx.config)));
  const fleet = plan.fleet;
  const endpoints = fleetHosts && fleet ? fleetHosts.map((a) => fleetEndpoint(fleet, a)) : (plan.agents ?? []).map((address) => ({ address }));
  const started: Started = {
    runId,
    settings,
    redis,
    connect: warming.connect,
    prewarm: () => warming.warm(endpoints.slice(0, PREWARM_MAX)),
    signer,
    clock,
    ignored: new IgnoredReport(ctx.out, 'result'),
    hostNames: new Map(fleetHosts?.map((a) => [a.address, a.host]) ?? []),
    stop,
  };
  const hosts = fleetHosts?.map((a) => a.host) ?? plan.agents ?? [];
  try {
    return input ? await runTaskList(plan, ctx, { ...started, input, agentCount: hosts.length }) : await runEachHost(plan, ctx, { ...started, hosts });
  } finally {
    warming.close();
    started.ignored.flush();
  }
}

/**
 * `work`, unless the run was stopped before it listened to the stop and Redis has not answered
 * since (StopNotes.unheard): then CANCELLED, saying `left(why)` (what the run leaves behind). The
 * work left behind fails once the caller closes its connection.
 */
async function unlessUnheard<T>(stop: StopNotes, work: Promise<T>, left: (why: string) => string): Promise<T> {
  const unheard = stop.unheard.catch((e: unknown) => {
    throw new GaxxError('CANCELLED', left(e instanceof Error ? e.message : String(e)));
  });
  return Promise.race([work, unheard]);
}

/** Lets go of the Redis `target` resolves to; nothing when getting it failed (that error is the caller's). */
async function released(target: Promise<RedisTarget>): Promise<void> {
  await target.then(
    (t) => t.release(),
    () => undefined,
  );
}

/** One task per host, pinned to it (the default without --tasks). */
async function runEachHost(plan: RunPlan, ctx: ExecuteContext, s: Started & { hosts: string[] }): Promise<number> {
  const tasks = eachHostTasks(plan, s.hosts);
  const view = viewsFor(plan, ctx, undefined, new Map(tasks.map((t, i) => [t.taskId, s.hosts[i] as string])), s.hostNames);
  const started = Date.now();
  const counts: OutcomeCounts = {};
  const down = new Set<string>();
  let outputCut = 0;
  // Whether Redis was last heard unreachable (a failed run's end record is then tried once).
  let redisDown = false;
  view.start({ runId: s.runId, argv: plan.argv, fleet: plan.fleet ?? '', mode: 'each-host' });
  const record = { argv: plan.argv, fleet: plan.fleet ?? '', agents: s.hosts.length, mode: 'each-host' as const };
  const redis = s.redis;
  await createRunRecord(redis, { runId: s.runId, startedAt: started, total: tasks.length, enqueued: tasks.length, ...record });
  // runAndWait leaves nothing queued when it fails: the run index must not list the run as running.
  const res = await runAndWait(
    { runId: s.runId, tasks },
    {
      settings: s.settings,
      redis,
      signer: s.signer,
      connect: s.connect,
      prewarm: s.prewarm,
      cancel: ctx.signal,
      onStop: s.stop.onStop,
      onListening: s.stop.listening,
      ...(plan.waitTimeoutMs ? { timeoutMs: plan.waitTimeoutMs } : {}),
      onStart: () => s.clock.mark('enqueuedMs'),
      onRedis: (isDown, ms, refused) => {
        redisDown = isDown;
        ctx.out.note(redisNote(isDown, ms, refused));
      },
      onIgnored: s.ignored.note,
      onNote: (_id, text) => ctx.out.note(`gaxx: ${text}`),
      onLive: (id, c) => view.live(id, c),
      onResult: (r, o, shown, pending) => {
        s.clock.result();
        countOutcome(counts, r.outcome);
        if (r.truncated) outputCut++;
        noteUnreachable(down, r);
        view.result(r, o, shown, undefined, pending);
      },
    },
  ).catch(async (e: unknown) => {
    // Written as every run's end record is (retried while the connection comes back, bounded).
    await landEndRecord(
      redis,
      s.runId,
      { state: 'failed', counts, finishedAt: Date.now() },
      { redisDown: redisDown || isGaxxError(e, 'REDIS_UNAVAILABLE'), what: `run ${s.runId}` },
    );
    throw e;
  });
  // The connection may still be coming back from an outage the wait rode out.
  const landing = { redisDown: res.redisDown, what: `run ${s.runId}` };
  // `gaxx runs cancel` from another shell sets the flag without aborting this process's signal.
  const cancelled = res.cancelled || (await mustLand(redis, () => isCancelled(redis, s.runId), landing).catch(() => false));
  // A wait that ended early (--wait-timeout, Redis gone) leaves the tasks without a result
  // queued: the run is still running (resumable), and what this process reported for those
  // tasks (unknown) is not a result the run index may count.
  if (!cancelled && !res.ended) s.stop.ended();
  if (cancelled || !res.ended) await landEndRecord(redis, s.runId, { state: cancelled ? 'cancelled' : 'done', counts, finishedAt: Date.now() }, landing);
  const summary = summarize(s.runId, counts, Date.now() - started, down, {
    state: cancelled ? 'cancelled' : res.ended ? endedState(res.ended) : 'done',
    outputCut,
    ...view.missed(),
  });
  endRun(view, ctx, summary, plan.timings ? { clock: s.clock, inProcess: res.inProcess } : undefined);
  if (cancelled) ctx.out.note(`gaxx: run ${s.runId} cancelled`);
  else if (res.ended) ctx.out.note(endedNote(res.ended, s.runId, ctx.config));
  return summaryExitCode(summary, cancelled, res.ended);
}

/**
 * `gaxx run --resume ID`: serves an earlier run's remaining tasks here and prints every result;
 * `resultsDir`: writes the run's `--results` folders there too (those already there kept).
 */
export async function resumeRunCommand(
  runId: string,
  ctx: ExecuteContext,
  opts: { waitTimeoutMs?: number; timings?: boolean; resultsDir?: string } = {},
): Promise<number> {
  const clock = new RunClock();
  const { waitTimeoutMs } = opts;
  const targetP = ctx.redis;
  const stop = stopNotes(ctx);
  try {
    const target = await targetP;
    clock.mark('redisMs');
    const creds = await schedulerCredentialSource(ctx.config.paths, credentialNotes(ctx));
    // Made once the run is known: a run of one task per host printed as its `gaxx run` prints it.
    let view: Views | undefined;
    let startedAt: number | undefined;
    const counts: OutcomeCounts = {};
    const down = new Set<string>();
    const started = Date.now();
    const ignored = new IgnoredReport(ctx.out, 'result');
    let outputCut = 0;
    // Shown as its own gaxx run showed it: a task list's results with their records, a fleet's hosts by name.
    const res = await unlessUnheard(
      stop,
      (async () => {
        const recorded = await RecordedRun.open(target.settings, runId, ctx.out, ctx.io.colour === true, opts.resultsDir, ctx.signal);
        return resumeRun(runId, {
          settings: target.settings,
          redis: recorded.redis,
          signer: operatorSigner(ctx.config.paths.operatorCertDir, ctx.config.paths.caDir),
          connect: agentConnector(creds, agentClientOptions(ctx.config)),
          cancel: ctx.signal,
          onStop: stop.onStop,
          onListening: stop.listening,
          ...(waitTimeoutMs ? { timeoutMs: waitTimeoutMs } : {}),
          // Once the run is known to exist: its header, with what the run index kept of it.
          onStart: (_id, rec, hosts) => {
            startedAt = rec?.startedAt;
            view = recorded.start({ argv: rec?.argv ?? [], fleet: rec?.fleet ?? '', mode: rec?.mode ?? 'each-host' }, hosts);
          },
          onRedis: (isDown, ms, refused) => ctx.out.note(redisNote(isDown, ms, refused)),
          onNote: (_id, text) => ctx.out.note(`gaxx: ${text}`),
          onIgnored: ignored.note,
          onLive: (id, c) => view?.live(id, c),
          onResult: (r, o, shown, pending) => {
            clock.result();
            countOutcome(counts, r.outcome);
            if (r.truncated) outputCut++;
            noteUnreachable(down, r);
            recorded.result(r, o, shown, pending);
          },
        })
          .then(async (out) => {
            await recorded.shown();
            return out;
          })
          .finally(() => {
            recorded.close();
            ignored.flush();
          });
      })(),
      (why) => `run ${runId}: ${why}: stopped without waiting longer; its tasks are as they were: gaxx run --resume ${runId} once Redis answers`,
    );
    if (!res.cancelled && !res.ended) stop.ended();
    // A failed run stays failed (its record says why), whatever this wait saw.
    const state = res.failed ? 'failed' : res.cancelled ? 'cancelled' : res.ended ? endedState(res.ended) : res.interrupted ? 'interrupted' : 'done';
    const unread = res.enqueued !== undefined ? { notEnqueuedFrom: res.enqueued + 1 } : {};
    // The run's own duration (from its start to its end, or to now) when its record says when it
    // started, as `gaxx runs wait` gives it.
    const summary = summarize(runId, counts, (res.finishedAt ?? Date.now()) - (startedAt || started), down, {
      state,
      ...unread,
      failure: res.failure,
      outputCut,
      ...view?.missed(),
    });
    endRun(view ?? recordedRunView(ctx.out, ctx.io.colour === true), ctx, summary, opts.timings ? { clock, inProcess: res.inProcess } : undefined);
    if (res.failure) ctx.out.note(failedNote(runId, res.failure, unread.notEnqueuedFrom));
    else if (res.cancelled) ctx.out.note(cancelledNote(runId, unread.notEnqueuedFrom));
    else if (res.ended) ctx.out.note(endedNote(res.ended, runId, ctx.config));
    else if (res.interrupted)
      ctx.out.note(
        `gaxx: run ${runId} was interrupted: its gaxx run ended before enqueueing all its input (it died, or gave up waiting: --wait-timeout); ${summary.total} enqueued ran${unread.notEnqueuedFrom ? `, records from ${unread.notEnqueuedFrom} on never did` : ''}`,
      );
    return summaryExitCode(summary, res.cancelled, res.ended ?? (res.interrupted ? INTERRUPTED : undefined));
  } finally {
    await stop.settle();
    await released(targetP);
  }
}
