/**
 * Dispatching one task: place it, Exec it on the agent, fold the events into a result, and
 * decide what a failure means.
 *
 * - Transport failure before the task can have started (no connection): recorded on the agent's
 *   breaker; any-host tasks move to another agent, pinned ones are retried on theirs, with
 *   jittered exponential backoff, up to `retry.attempts`; then the task ends `unreachable`.
 * - Transport failure after it may have started (Started seen, or the request went out): the
 *   task stays with that agent and goes back to it under the same exec id (attach or replay),
 *   for up to `agentGoneMs`; then an any-host task may run elsewhere, once, on an agent that
 *   answers at once (`mayHaveRepeated`); otherwise it ends `unknown` ("(may have) started on X,
 *   outcome lost"). `unreachable` only for a task that never started anywhere.
 * - RESOURCE_EXHAUSTED (the agent is full, e.g. other schedulers' tasks, or cannot take work: its
 *   disk under its reserve, a rate limit): neither an attempt nor a breaker failure. The task is
 *   not sent there again before the agent's retry hint (else a short backoff): an any-host task
 *   goes to another agent with room meanwhile, and waits only when every agent refuses it or is
 *   full; a pinned one waits for its agent and says why when the agent cannot take work. Such
 *   waits are bounded by `busyWaitMs`.
 * - Waiting on an open breaker is not an attempt: it is bounded by `agentGoneMs` (an agent never
 *   reached at all still fails after `retry.attempts` waits).
 * - Any other agent refusal (bad request, permission, identity): an `error` result, no retry.
 * - A command that exits non-zero is a RESULT (`failed`), retried only with `retryOnFailure`,
 *   each re-run under a new exec id `<jobId>.r<n>` so the agent does not replay the failure.
 *
 * Exactly-once: the exec task id is the job id, and the chosen agent is saved in the job before
 * each dispatch, so a re-dispatch (scheduler crash, stalled job, lost stream) reaches the same
 * agent, which attaches to the running task or replays its stored result (its registry survives
 * an agent restart on disk; a task that was running when the agent died is reported lost, never
 * run again). A command can still run a second time when: the registry entry expired (its TTL)
 * or was evicted before the re-dispatch, or the agent lost its state dir; an any-host task's
 * agent stayed unreachable longer than `agentGoneMs` after it may have started the command
 * (the result says `mayHaveRepeated`); or `retryOnFailure` asked for re-runs. Every step for a
 * job (placement, Exec, Cancel, result) is taken only while its worker holds the job's lock, so a
 * worker that stalled past it never dispatches a job another worker took over (job-lock.ts).
 */
import type { AgentEndpoint, AgentPool } from './agent-pool.js';
import type { LiveSink } from './exec-once.js';
import type { SchedulerMetrics } from '../daemon/metrics.js';
import type { RetryPolicy } from './retry-policy.js';
import { taskResult, type OutputChunk, type TaskResult } from '../queue/results.js';
import { TaskDispatch } from './task-dispatch.js';
import type { TaskSpec } from '../queue/task.js';

/** What a job records of its dispatch (TaskSpec.dispatch). */
export type DispatchState = NonNullable<TaskSpec['dispatch']>;

/** What a dispatch needs from the job it serves. */
export interface JobHandle {
  id: string;
  enqueuedAt: number;
  /**
   * Stop: the worker drains (hand the job back), or its lock on the job is lost (another worker
   * has it). The agent keeps running the task either way, for the worker that takes it next.
   */
  signal: AbortSignal;
  /** The run was cancelled: Cancel the task on its agent and end it `cancelled`. */
  cancel: AbortSignal;
  /** Whether a worker may have dispatched this job before (it was taken, then stalled or handed back). */
  takenBefore: boolean;
  /**
   * Persists the dispatch state in the job (before an Exec that changes it), in one step with
   * checking that this worker still holds the job; throws LockLost (queue/job-lock.ts) when not.
   */
  saveDispatch(d: DispatchState): Promise<void>;
  /**
   * Resolves while this worker still holds the job (its BullMQ lock); throws LockLost when another
   * worker may have it. Asked before every call to an agent for the job that saves nothing.
   */
  hold(): Promise<void>;
  /** Where output goes as it arrives (live display); absent: only with the result. */
  live?: LiveSink;
  /**
   * A word about the running task for whoever follows its run (display only). With `once`, a
   * note many tasks of the run would give alike: said only the first time the worker is given
   * one under that key for the run.
   */
  note?(text: string, once?: string): void;
  /** Loads a run input blob (for `input`); null when it is gone (expired or deleted). */
  loadInput(name: string): Promise<Buffer | null>;
}

export interface DispatchContext {
  pool: AgentPool;
  metrics?: SchedulerMetrics;
  /**
   * The agents a task may use (fleet lookup, or its own list) and its pinned agent: the endpoint
   * of its host, whose identity the agent must prove (another host may be recorded at the same address).
   */
  resolve(spec: TaskSpec): Promise<{ endpoints: AgentEndpoint[]; pinned?: AgentEndpoint }>;
  /** Overrides of the retry policy's defaults (retry-policy.ts); a task's `retry` wins for its fields. */
  policy?: Partial<RetryPolicy>;
}

/** A finished task: its result and output. */
export interface Dispatched {
  result: TaskResult;
  output: OutputChunk[];
}

/**
 * Runs one task to a result. Throws when the job's signal aborts (hand the job back) or the job is
 * found to be another worker's (LockLost): nothing more is done for it then.
 */
export async function dispatchTask(ctx: DispatchContext, spec: TaskSpec, job: JobHandle): Promise<Dispatched> {
  const { endpoints, pinned } = await ctx.resolve(spec);
  if ('host' in spec.target && (pinned === undefined || !endpoints.includes(pinned))) {
    return {
      result: taskResult(
        { runId: spec.runId, taskId: spec.taskId, host: spec.target.host, outcome: 'error', reason: 'NOT_FOUND' },
        { error: `no agent for host ${spec.target.host}` },
      ),
      output: [],
    };
  }
  let stdin: Buffer | undefined = spec.stdin ? Buffer.from(spec.stdin, 'base64') : undefined;
  if (spec.input !== undefined) {
    const blob = await job.loadInput(spec.input);
    // Never run a command that expects input with an empty stdin instead.
    if (blob === null)
      return {
        result: taskResult(
          { runId: spec.runId, taskId: spec.taskId, host: pinned?.address ?? '', outcome: 'error', reason: 'NOT_FOUND' },
          { error: `run input '${spec.input}' is gone (expired or deleted)` },
        ),
        output: [],
      };
    stdin = blob;
  }
  return new TaskDispatch(ctx, spec, job, endpoints, pinned, stdin).run();
}
