/**
 * One Exec stream, read to the agent's exit event: the events folded into exit, start and output,
 * with output also handed to the task's live sink as it arrives.
 */
import { raceAbort, type ExecRequest, type Exit__Output, type Started__Output } from '../../proto/index.js';
import type { AgentLink } from './agent-pool.js';
import type { OutputChunk } from '../queue/results.js';

/** Live output of one task (live.ts): chunks as they arrive, and how each execution began. */
export interface LiveSink {
  push(c: OutputChunk): void;
  /** Attached to the task's execution (or its end replayed): `fromStart` when its output events begin with its first byte. */
  resume(fromStart: boolean): void;
  /** A new execution of the task began. */
  restart(): void;
}

/** The stream ended without an exit event (agent gone mid-task). */
export class StreamEnded extends Error {}

/** What one Exec produced. */
export interface ExecOutcome {
  exit: Exit__Output;
  started: Started__Output | undefined;
  startedAt: number;
  output: OutputChunk[];
}

/** What a failed Exec got before it failed (the caller's record: did the agent say Started, and what output came?). */
export interface ExecSeen {
  started?: Started__Output;
  /** When the (first) Started came. */
  startedAt?: number;
  output?: OutputChunk[];
}

/**
 * Runs the Exec stream to its exit event. The drain signal is deliberately NOT handed to the
 * client (that would Cancel the task on the agent): on drain we stop reading and drop the
 * stream, and the agent keeps the task running for the worker that takes the job next. The
 * run's cancel signal is: the client then sends Cancel and reads on to the agent's exit event.
 */
export async function execOnce(
  link: AgentLink,
  req: ExecRequest,
  signal: AbortSignal,
  cancel: AbortSignal,
  deadlineMs: number | undefined,
  live?: LiveSink,
  seen: ExecSeen = {},
): Promise<ExecOutcome> {
  const output: OutputChunk[] = [];
  seen.output = output;
  let started: Started__Output | undefined;
  let startedAt = 0;
  const it = link.exec(req, { signal: cancel, ...(deadlineMs ? { deadlineMs } : {}) })[Symbol.asyncIterator]();
  try {
    for (;;) {
      // One wait per event, not a race against one promise for the whole stream (proto/race.ts).
      const next = await raceAbort(it.next(), [signal]);
      if (next === 'stop' || next === 'tick') throw new Error('dispatch aborted');
      if (next.done) throw new StreamEnded('exec stream ended without an exit event');
      const ev = next.value;
      if (ev.started) {
        started = ev.started;
        seen.started = ev.started;
        startedAt = Date.now();
        seen.startedAt ??= startedAt;
        // An attach or replay sends the agent's buffered output: from the start unless it dropped some.
        if (started.attached || started.replayed) live?.resume(started.fromStart);
        else live?.restart();
      } else if (ev.stdout || ev.stderr) {
        const chunk: OutputChunk = ev.stdout ? { stream: 1, data: ev.stdout } : { stream: 2, data: ev.stderr as Buffer };
        output.push(chunk);
        live?.push(chunk);
      } else if (ev.exit) return { exit: ev.exit, started, startedAt, output };
    }
  } finally {
    void it.return?.()?.catch(() => undefined);
  }
}
