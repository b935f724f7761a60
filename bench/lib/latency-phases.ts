/**
 * Where one task's enqueue -> result time goes (bench:scheduler's idle latency): the moments a
 * single-task run passes, as the process that enqueues, dispatches (its in-process worker) and
 * waits sees them, and the median time between each two. The worker's side is read from its
 * agent connector (tracingConnector), so the scheduler's code is measured as it is.
 */
import type { AgentConnector, AgentLink } from '../../scheduler/dispatch/agent-pool.js';
import { median } from './timing.js';

/** The moments of one run, in performance.now() ms. */
export interface RunMoments {
  /** Just before enqueueing. */
  start: number;
  /** The enqueue returned (the run and its job are in Redis). */
  enqueued: number;
  /** The worker called Exec on the agent (the job was taken and placed). */
  execCalled?: number;
  /** The agent said the task's process started. */
  started?: number;
  /** The agent said it exited. */
  exited?: number;
  /** The wait for the run's results returned. */
  done: number;
}

/** The phases between moments, in order: [name, from, to]. */
export const PHASES = [
  ['enqueue', 'start', 'enqueued'],
  ['pick-up', 'enqueued', 'execCalled'],
  ['to started', 'execCalled', 'started'],
  ['to exit', 'started', 'exited'],
  ['result back', 'exited', 'done'],
] as const satisfies ReadonlyArray<readonly [string, keyof RunMoments, keyof RunMoments]>;

export type PhaseName = (typeof PHASES)[number][0];

/** The worker-side moments a traced link reports. */
export type LinkMoment = 'execCalled' | 'started' | 'exited';

/**
 * `inner`, with every link's Exec reporting when it was called (its first read: the call goes
 * out then), when the agent said started and when it said exit. Nothing else changes.
 */
export function tracingConnector(inner: AgentConnector, mark: (moment: LinkMoment, at: number) => void): AgentConnector {
  return (endpoint) => {
    const link = inner(endpoint);
    const traced: AgentLink = {
      exec: (req, opts) => ({
        async *[Symbol.asyncIterator]() {
          mark('execCalled', performance.now());
          for await (const ev of link.exec(req, opts)) {
            if (ev.started) mark('started', performance.now());
            else if (ev.exit) mark('exited', performance.now());
            yield ev;
          }
        },
      }),
      info: () => link.info(),
      health: () => link.health(),
      cancel: (taskId) => link.cancel(taskId),
      warm: () => link.warm(),
      close: () => link.close(),
    };
    return traced;
  };
}

/**
 * The median of each phase over `runs` (ms), counting only runs that have both its moments;
 * undefined for a phase no run has.
 */
export function phaseMedians(runs: readonly RunMoments[]): Record<PhaseName, number | undefined> {
  const out = {} as Record<PhaseName, number | undefined>;
  for (const [name, from, to] of PHASES) {
    const spans = runs
      .map((r) => (r[from] !== undefined && r[to] !== undefined ? (r[to] as number) - (r[from] as number) : undefined))
      .filter((x): x is number => x !== undefined);
    out[name] = spans.length ? median(spans) : undefined;
  }
  return out;
}

/** `enqueue 1.2, pick-up 3.4, ...` (ms; `-` for a phase without data). */
export function formatPhases(p: Record<PhaseName, number | undefined>): string {
  return PHASES.map(([name]) => `${name} ${p[name] === undefined ? '-' : (p[name] as number).toFixed(1)}`).join(', ');
}
