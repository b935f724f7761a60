/**
 * Dispatching one task: place it, Exec it on the agent, fold the events into a result, and
 * decide what a failure means.
 *
 * - Transport failure (agent unreachable, connection dropped mid-task, stream ended without an
 *   exit): recorded on the agent's breaker; any-host tasks move to another agent, pinned ones are
 *   retried on theirs, with jittered exponential backoff, up to `retry.attempts`; then the task
 *   ends `unreachable`.
 * - RESOURCE_EXHAUSTED (the agent is full, e.g. other schedulers' tasks): wait and retry; not a
 *   breaker failure.
 * - Any other agent refusal (bad request, permission, identity): an `error` result, no retry.
 * - A command that exits non-zero is a RESULT (`failed`), retried only with `retryOnFailure`,
 *   each re-run under a new exec id `<jobId>.r<n>` so the agent does not replay the failure.
 *
 * Exactly-once: the exec task id is the job id, and the chosen agent is saved in the job before
 * each dispatch, so a re-dispatch (scheduler crash, stalled job, lost stream) reaches the same
 * agent, which attaches to the running task or replays its stored result. A command can still run
 * a second time when: the agent restarted (or was killed) between the two dispatches, since its
 * registry lives in memory; the registry entry expired (its TTL) before the re-dispatch; an
 * any-host task's agent became unreachable (breaker open) after it had started the command, so
 * the task moved to another agent while the first may still have run it; or `retryOnFailure`
 * asked for re-runs.
 */
import { isGaxxError, type ErrorCode, type ExecRequest } from '../../proto/index.js';
import type { AgentEndpoint, AgentPool } from './agent-pool.js';
import { backoffDelay } from './breaker.js';
import { execOnce, StreamEnded, type ExecOutcome, type LiveSink } from './exec-once.js';
import type { SchedulerMetrics } from '../daemon/metrics.js';
import { place } from './placement.js';
import { outcomeOf, type OutputChunk, type TaskResult } from '../queue/results.js';
import { signedTaskOf } from '../queue/sign.js';
import type { TaskSpec } from '../queue/task.js';

/** What a dispatch needs from the job it serves. */
export interface JobHandle {
  id: string;
  enqueuedAt: number;
  /** Draining: stop reading and hand the job back; the agent keeps running the task. */
  signal: AbortSignal;
  /** The run was cancelled: Cancel the task on its agent and end it `cancelled`. */
  cancel: AbortSignal;
  /** Whether a worker may have dispatched this job before (it was taken, then stalled or handed back). */
  takenBefore: boolean;
  /** Persists the dispatch state in the job (before each Exec). */
  saveDispatch(d: { placedOn?: string; round: number }): Promise<void>;
  /** Where output goes as it arrives (live display); absent: only with the result. */
  live?: LiveSink;
  /** Loads a run input blob (for `input`); null when it is gone (expired or deleted). */
  loadInput(name: string): Promise<Buffer | null>;
}

export interface DispatchContext {
  pool: AgentPool;
  metrics?: SchedulerMetrics;
  /** The agents a task may use (fleet lookup, or its own list) and its pinned agent's address. */
  resolve(spec: TaskSpec): Promise<{ endpoints: AgentEndpoint[]; pinned?: string }>;
  backoffMaxMs?: number;
}

/** A finished task: its result and output. */
export interface Dispatched {
  result: TaskResult;
  output: OutputChunk[];
}

/** How long to wait for a Cancelled task's exit when attaching to it after a cancel. */
const CANCEL_ATTACH_MS = 30_000;

const TRANSPORT: ReadonlySet<ErrorCode> = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL', 'CANCELLED']);

function endResult(spec: TaskSpec, host: string, attempts: number, outcome: TaskResult['outcome'], reason: string, error: string): TaskResult {
  return {
    runId: spec.runId, taskId: spec.taskId, host, outcome, exitCode: null, signal: null, reason, error,
    durationMs: 0, stdoutBytes: 0, stderrBytes: 0, truncated: false, attempts, attached: false, replayed: false,
    finishedAt: new Date().toISOString(),
  };
}

function buildRequest(spec: TaskSpec, stdin: Buffer | undefined, execId: string): ExecRequest {
  return {
    // The operator's signature travels with every Exec; the agent checks it before running.
    ...(spec.signed ? { signed: signedTaskOf(spec, spec.signed) } : {}),
    taskId: execId,
    argv: spec.argv,
    env: spec.env,
    ...(stdin ? { stdin } : {}),
    timeoutMs: spec.timeoutMs ?? 0,
    outputCapBytes: spec.outputCapBytes,
  };
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** What one pass of the dispatch loop decided. */
type Step = { done: Dispatched } | { again: true } | { giveUp: true };
const AGAIN: Step = { again: true };
const GIVE_UP: Step = { giveUp: true };

/** One task's way through placement, Exec and retries (state of the loop in dispatchTask). */
class TaskDispatch {
  private placedOn: string | undefined;
  private round: number;
  private infra = 0;
  private busy = 0;
  private attempts = 0;
  private lastHost: string;
  private lastError = '';
  private readonly failedOn = new Set<string>();
  private readonly seed = Math.floor(Math.random() * 1e6);
  private readonly backoff: { baseMs: number; maxMs: number };
  /** Wakes waits and backoffs on drain or cancel. */
  private readonly wakeCtl = new AbortController();
  private readonly wake = this.wakeCtl.signal;

  constructor(
    private readonly ctx: DispatchContext,
    private readonly spec: TaskSpec,
    private readonly job: JobHandle,
    private readonly endpoints: AgentEndpoint[],
    private readonly pinned: string | undefined,
    private readonly stdin: Buffer | undefined,
  ) {
    this.placedOn = spec.dispatch?.placedOn;
    this.round = spec.dispatch?.round ?? 0;
    this.lastHost = this.placedOn ?? pinned ?? endpoints[0]?.address ?? '';
    this.backoff = { baseMs: spec.retry.backoffMs, maxMs: ctx.backoffMaxMs ?? 30_000 };
  }

  async run(): Promise<Dispatched> {
    if (this.job.cancel.aborted) return this.cancelledBeforeDispatch();
    // Listeners on the worker-wide drain signal are removed when the task ends (it lives long).
    const wakeUp = (): void => this.wakeCtl.abort();
    this.job.signal.addEventListener('abort', wakeUp, { once: true });
    this.job.cancel.addEventListener('abort', wakeUp, { once: true });
    try {
      return await this.loop();
    } finally {
      this.job.signal.removeEventListener('abort', wakeUp);
      this.job.cancel.removeEventListener('abort', wakeUp);
    }
  }

  private async loop(): Promise<Dispatched> {
    await this.ctx.pool.ensure(this.endpoints);
    for (;;) {
      if (this.job.signal.aborted) throw new Error('dispatch aborted');
      if (this.job.cancel.aborted) return this.ended('cancelled', 'cancelled', 'run cancelled before the task ran');
      const step = await this.step();
      if ('done' in step) return step.done;
      if ('giveUp' in step) break;
    }
    return this.ended('unreachable', 'UNAVAILABLE', this.lastError || 'no agent reachable');
  }

  /**
   * The run was cancelled before this worker dispatched the task. A job taken before (its worker
   * died or handed it back) may still be running on its agent under its exec id: Cancel it there.
   */
  private async cancelledBeforeDispatch(): Promise<Dispatched> {
    const addr = this.pinned ?? this.placedOn;
    if (!this.job.takenBefore || addr === undefined) return this.ended('cancelled', 'cancelled', 'run cancelled before the task ran');
    await this.ctx.pool.ensure(this.endpoints);
    const execId = this.round === 0 ? this.job.id : `${this.job.id}.r${this.round}`;
    const expect = this.endpoints.find((e) => e.address === addr)?.expect;
    const link = this.ctx.pool.link(addr, expect);
    this.lastHost = addr;
    const found = await link.cancel(execId).catch(() => false);
    if (!found) return this.ended('cancelled', 'cancelled', 'run cancelled');
    // It was running there: attach (the registry holds it, so this never starts it again) and
    // read on to the exit the Cancel causes, for the task's real end and output.
    try {
      const got = await execOnce(link, buildRequest(this.spec, this.stdin, execId), this.job.signal, new AbortController().signal, CANCEL_ATTACH_MS);
      return { result: exitResult(this.spec, addr, 1, got, outcomeOf(got.exit)), output: got.output };
    } catch {
      return this.ended('cancelled', 'cancelled', 'run cancelled; stop sent to the agent');
    }
  }

  private ended(outcome: TaskResult['outcome'], reason: string, error: string): Dispatched {
    return { result: endResult(this.spec, this.lastHost, this.attempts, outcome, reason, error), output: [] };
  }

  private async step(): Promise<Step> {
    const candidates = this.endpoints.map((e) => e.address);
    const p = place({ pinned: this.pinned, candidates, placedOn: this.placedOn, failedOn: this.failedOn, seed: this.seed }, this.ctx.pool.snapshot(candidates));
    if (p.kind === 'none') return { done: this.ended('error', 'NOT_FOUND', `no agent for this task (${p.reason})`) };
    if (p.kind === 'wait') {
      if (p.reason === 'breaker-open' && ++this.infra >= this.spec.retry.attempts) return GIVE_UP;
      await this.ctx.pool.waitForChange(p.until ? p.until - Date.now() + 5 : 1000, this.wake);
      await this.ctx.pool.ensure(this.endpoints);
      return AGAIN;
    }
    const addr = p.address;
    this.lastHost = addr;
    if (this.placedOn !== addr) {
      this.placedOn = addr;
      // A pinned task can only go back to its agent, so only any-host placements are saved.
      if (this.pinned === undefined) await this.job.saveDispatch({ placedOn: addr, round: this.round });
    }
    const req = buildRequest(this.spec, this.stdin, this.round === 0 ? this.job.id : `${this.job.id}.r${this.round}`);
    this.ctx.pool.acquire(addr);
    this.attempts += 1;
    // Output of an earlier execution was streamed already: this one's is not its continuation.
    if (this.attempts > 1) this.job.live?.spoil();
    let got: ExecOutcome | undefined;
    let failure: unknown;
    try {
      const link = this.ctx.pool.link(addr, this.endpoints.find((e) => e.address === addr)?.expect);
      got = await execOnce(link, req, this.job.signal, this.job.cancel, this.spec.timeoutMs ? this.spec.timeoutMs + 30_000 : undefined, this.job.live);
    } catch (e) {
      failure = e;
    } finally {
      this.ctx.pool.release(addr);
    }
    if (got === undefined) {
      if (this.job.signal.aborted) throw failure;
      if (this.job.cancel.aborted) {
        // No exit event after the Cancel: say so rather than claim the agent stopped it.
        const code = isGaxxError(failure) ? failure.code : 'UNAVAILABLE';
        return { done: this.ended('cancelled', code, `run cancelled; the agent did not confirm the stop (${(failure as Error).message})`) };
      }
      return this.onError(addr, failure);
    }
    this.ctx.pool.success(addr);
    return this.onExit(addr, got);
  }

  private async onExit(addr: string, got: ExecOutcome): Promise<Step> {
    if (got.started) this.ctx.metrics?.dispatchLatency.observe(Math.max(0, got.startedAt - this.job.enqueuedAt) / 1000);
    const outcome = outcomeOf(got.exit);
    if (outcome !== 'succeeded' && !this.job.cancel.aborted && this.spec.retry.retryOnFailure && this.round + 1 < this.spec.retry.attempts) {
      this.round += 1;
      this.ctx.metrics?.retries.inc({ kind: 'failure' });
      await this.job.saveDispatch({ placedOn: this.placedOn, round: this.round });
      await sleep(backoffDelay(this.round, this.backoff), this.wake);
      return AGAIN;
    }
    return { done: { result: exitResult(this.spec, addr, this.attempts, got, outcome), output: got.output } };
  }

  private async onError(addr: string, e: unknown): Promise<Step> {
    const code: ErrorCode = e instanceof StreamEnded ? 'UNAVAILABLE' : isGaxxError(e) ? e.code : 'INTERNAL';
    this.lastError = `${code}: ${(e as Error).message}`;
    if (code === 'RESOURCE_EXHAUSTED' && this.busy < 200) {
      this.ctx.metrics?.retries.inc({ kind: 'busy' });
      await sleep(backoffDelay(Math.min(++this.busy, 5), this.backoff), this.wake);
      return AGAIN;
    }
    if (!TRANSPORT.has(code)) return { done: this.ended('error', code, this.lastError) };
    this.ctx.pool.failure(addr);
    this.ctx.metrics?.retries.inc({ kind: 'transport' });
    this.failedOn.add(addr);
    if (this.pinned === undefined) this.placedOn = undefined;
    if (++this.infra >= this.spec.retry.attempts) return GIVE_UP;
    await sleep(backoffDelay(this.infra, this.backoff), this.wake);
    return AGAIN;
  }
}

/** Runs one task to a result. Throws only when the job's signal aborts (hand the job back). */
export async function dispatchTask(ctx: DispatchContext, spec: TaskSpec, job: JobHandle): Promise<Dispatched> {
  const { endpoints, pinned } = await ctx.resolve(spec);
  if ('host' in spec.target && (pinned === undefined || !endpoints.some((e) => e.address === pinned))) {
    return { result: endResult(spec, spec.target.host, 0, 'error', 'NOT_FOUND', `no agent for host ${spec.target.host}`), output: [] };
  }
  let stdin: Buffer | undefined = spec.stdin ? Buffer.from(spec.stdin, 'base64') : undefined;
  if (spec.input !== undefined) {
    const blob = await job.loadInput(spec.input);
    // Never run a command that expects input with an empty stdin instead.
    if (blob === null) return { result: endResult(spec, pinned ?? '', 0, 'error', 'NOT_FOUND', `run input '${spec.input}' is gone (expired or deleted)`), output: [] };
    stdin = blob;
  }
  return new TaskDispatch(ctx, spec, job, endpoints, pinned, stdin).run();
}

function exitResult(spec: TaskSpec, host: string, attempts: number, got: ExecOutcome, outcome: TaskResult['outcome']): TaskResult {
  const x = got.exit;
  return {
    runId: spec.runId, taskId: spec.taskId, host, outcome,
    exitCode: x.signal ? null : x.code, signal: x.signal || null, reason: x.reason,
    ...(x.error ? { error: x.error } : {}),
    durationMs: Number(x.durationMs), stdoutBytes: Number(x.stdoutBytes), stderrBytes: Number(x.stderrBytes),
    truncated: x.truncated, attempts, attached: got.started?.attached ?? false, replayed: got.started?.replayed ?? false,
    finishedAt: new Date().toISOString(),
  };
}
