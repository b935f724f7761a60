/**
 * One Exec call read as the agent client's callers see it: its events as they arrive, a Cancel
 * of the task when the caller aborts (once the agent knows the task), and the call's end read
 * after the exit event in the background rather than cancelled.
 */
import type * as grpc from '@grpc/grpc-js';
import { GaxxError, refusedUnstarted, type ExecEvent__Output } from '../../proto/index.js';

/** After a Cancel, how long to wait for the agent's exit event before dropping the stream. */
const CANCEL_GRACE_MS = 5_000;
/** How long the call's end may lag its exit event before the exit is passed on anyway. */
const TRAILERS_LATE_MS = 2000;
const TRAILERS_LATE = Symbol('trailers late');
/** Resolves (unref'd) once TRAILERS_LATE_MS passed. */
function trailersLate(): Promise<typeof TRAILERS_LATE> {
  return new Promise((resolve) => setTimeout(resolve, TRAILERS_LATE_MS, TRAILERS_LATE).unref());
}

/** Stops reading an Exec call and cancels it. */
function abandon(events: AsyncIterator<ExecEvent__Output>, call: { cancel(): void }): void {
  void events.return?.()?.catch(() => undefined);
  call.cancel();
}

/**
 * Reads an Exec call whose exit event its caller has (and stopped at) to its end, in the
 * background: the call is cancelled only when its end does not come within TRAILERS_LATE_MS.
 */
function readToEnd(events: AsyncIterator<ExecEvent__Output>, call: { cancel(): void }): void {
  void (async () => {
    for (;;) {
      const next = await Promise.race([events.next(), trailersLate()]);
      if (next === TRAILERS_LATE) break;
      if (next.done) return;
    }
    abandon(events, call);
  })().catch(() => undefined);
}

/** What an Exec call's reading needs beside the call. */
export interface ExecStreamContext {
  taskId: string;
  /** The request went out at once (the channel was READY): the agent may have started the task. */
  sent: boolean;
  signal?: AbortSignal | undefined;
  /** Asks the agent to stop the task (AgentClient.cancel). */
  cancel(taskId: string): Promise<unknown>;
  /** Any failure of the call as a GaxxError (AgentClient's mapping). */
  mapError(e: unknown): GaxxError;
}

/** Yields `call`'s events, started, output and exit, as they arrive (see the module's comment). */
export async function* execStream(call: grpc.ClientReadableStream<ExecEvent__Output>, ctx: ExecStreamContext): AsyncGenerator<ExecEvent__Output> {
  let grace: NodeJS.Timeout | undefined;
  let started = false;
  let cancelWanted = false;
  const sendCancel = () => {
    // Ask the agent to stop the task's process group, then give it time to send the exit event.
    ctx.cancel(ctx.taskId).catch(() => undefined);
    clearTimeout(grace);
    grace = setTimeout(() => call.cancel(), CANCEL_GRACE_MS);
  };
  const onAbort = () => {
    cancelWanted = true;
    // Before 'started' the agent may not know the task yet: cancel once it does (or drop the
    // stream if it never says so).
    if (started) sendCancel();
    else grace = setTimeout(() => call.cancel(), CANCEL_GRACE_MS);
  };
  // A stop that came first is no event: asked for at once.
  if (ctx.signal?.aborted) onAbort();
  else ctx.signal?.addEventListener('abort', onAbort, { once: true });
  const events = (call as AsyncIterable<ExecEvent__Output>)[Symbol.asyncIterator]();
  // The exit event goes to the caller as it comes. The agent ends the call right after it (its
  // trailers come a loop turn later): a caller that stops at the exit leaves the call to be
  // read to that end here, not cancelled (a cancel costs both sides an error, a stack trace and
  // a reset stream per task), and one that reads on gets the end as before.
  let exit: ExecEvent__Output | undefined;
  let ended = false;
  /** The end was waited for after the exit, in vain. */
  let late = false;
  try {
    for (;;) {
      const next = exit ? await Promise.race([events.next(), trailersLate()]) : await events.next();
      if (next === TRAILERS_LATE || next.done) {
        ended = next !== TRAILERS_LATE;
        late = !ended;
        break;
      }
      const ev = next.value;
      if (ev.started && !started) {
        started = true;
        if (cancelWanted) sendCancel();
      }
      if (ev.exit) exit = ev;
      yield ev;
    }
  } catch (e) {
    // The task's end is known: what went wrong after it does not change it.
    if (!exit) {
      const err = ctx.mapError(e);
      // `requestSent`: the agent may have started the task (the retry policy must not move it);
      // not when the agent itself said it never did.
      throw new GaxxError(err.code, err.message, { cause: err.cause, details: { ...err.details, requestSent: ctx.sent && !refusedUnstarted(err) } });
    }
  } finally {
    ctx.signal?.removeEventListener('abort', onAbort);
    clearTimeout(grace);
    if (!ended) {
      if (exit && !late) readToEnd(events, call);
      else abandon(events, call);
    }
  }
}
