/** `gaxx run --tasks`: one task per input record, streamed through the queue window. */
import type { Readable } from 'node:stream';
import { storeTaskRecords, streamRun, type RefusedTask, type TaskInput } from '../../scheduler/index.js';
import type { RunPlan } from './plan.js';
import { ProgressLine } from './progress.js';
import { recordTask } from './records.js';
import { endedNote, endRun, redisNote, viewsFor, type ExecuteContext, type Started } from './run-shared.js';
import { cancelledNote, endedState, failedNote, noteUnreachable, summarize, summaryExitCode } from './summary.js';
import { readRecords, taskListReadError } from './task-source.js';

/** One task per input record, placed on any free host, streamed through the queue window. */
export async function runTaskList(plan: RunPlan, ctx: ExecuteContext, s: Started & { input: Readable; agentCount: number }): Promise<number> {
  const records = new Map<string, string>();
  const tally = { done: 0, failed: 0, refused: 0, cancelled: 0 };
  let outputCut = 0;
  let enqueued = 0;
  let total: number | undefined;
  const down = new Set<string>();
  const progress = ctx.out.json ? undefined : new ProgressLine(ctx.io, ctx.io.stderrLive, () => ({ ...tally, enqueued, total }));
  const view = viewsFor(plan, ctx, progress, undefined, s.hostNames);
  const started = Date.now();
  view.start({ runId: s.runId, argv: plan.argv, fleet: plan.fleet ?? '', mode: 'tasks' });
  // Every record goes through recordTask, whatever the source: a task, or its refusal.
  async function* tasks(): AsyncGenerator<TaskInput | RefusedTask> {
    let seq = 0;
    try {
      for await (const raw of readRecords(s.input, plan.separator)) {
        seq++;
        const { task, record } = recordTask(plan, raw, seq);
        if (record !== undefined) records.set(String(seq), record);
        yield task;
      }
    } catch (e) {
      // A read that failed (EIO, a connection reset) is FILE_ACCESS naming the input, never taken as its end.
      throw taskListReadError(plan.tasks ?? '-', e, ctx.io);
    }
    total = seq;
  }
  try {
    const res = await streamRun(tasks(), {
      runId: s.runId,
      settings: s.settings,
      redis: s.redis,
      signer: s.signer,
      connect: s.connect,
      prewarm: s.prewarm,
      window: plan.window,
      cancel: ctx.signal,
      onStop: s.stop.onStop,
      onListening: s.stop.listening,
      // Kept with the run: `gaxx runs wait` and `--resume` give each result its record as this run does.
      beforeEnqueue: (ids) =>
        storeTaskRecords(s.redis, s.runId, Object.fromEntries(ids.flatMap((id) => (records.has(id) ? [[id, records.get(id) as string]] : [])))),
      ...(plan.waitTimeoutMs ? { timeoutMs: plan.waitTimeoutMs } : {}),
      record: { argv: plan.argv, fleet: plan.fleet ?? '', agents: s.agentCount, mode: 'tasks' },
      onIgnored: s.ignored.note,
      onEnqueued: (n) => {
        enqueued = n;
        s.clock.mark('enqueuedMs');
      },
      onRedis: (isDown, ms, refused) => ctx.out.note(redisNote(isDown, ms, refused)),
      onNote: (_id, text) => ctx.out.note(`gaxx: ${text}`),
      paced: () => ctx.out.drained(),
      onResult: (r, o, shown, pending) => {
        s.clock.result();
        tally.done++;
        if (r.truncated) outputCut++;
        if (r.outcome === 'refused' || r.outcome === 'cancelled') tally[r.outcome]++;
        else if (r.outcome !== 'succeeded') tally.failed++;
        noteUnreachable(down, r);
        view.result(r, o, shown, records.get(r.taskId), pending);
        records.delete(r.taskId);
      },
    });
    // A task list that could not be read to its end failed (its record says why): so does this run.
    const state = res.failure ? 'failed' : res.cancelled ? 'cancelled' : res.ended ? endedState(res.ended) : 'done';
    if (state === 'done') s.stop.ended();
    const unread = res.inputRead ? {} : { notEnqueuedFrom: res.total + 1 };
    const summary = summarize(s.runId, res.counts, Date.now() - started, down, {
      state,
      ...unread,
      failure: res.failure,
      outputCut,
      ...view.missed(),
    });
    endRun(view, ctx, summary, plan.timings ? { clock: s.clock, inProcess: res.inProcess } : undefined);
    const rest = res.inputRead ? '' : `; records from ${res.total + 1} on were never enqueued`;
    if (res.failure) ctx.out.note(failedNote(s.runId, res.failure, unread.notEnqueuedFrom));
    else if (res.cancelled) ctx.out.note(cancelledNote(s.runId, unread.notEnqueuedFrom));
    else if (res.ended) ctx.out.note(endedNote(res.ended, s.runId, ctx.config, rest));
    return summaryExitCode(summary, res.cancelled, res.ended);
  } finally {
    progress?.stop();
  }
}
