/**
 * One task's way through placement, Exec and retries (the state of the loop dispatchTask runs).
 * The rules are those of dispatch.ts and retry-policy.ts; this file holds their bookkeeping:
 *
 * - Sticky agent: once an Exec may have started the task on an agent (the agent said Started, or
 *   the request went out on a live connection, or an earlier worker saved that placement), a
 *   broken stream does not move the task. It goes back to that agent under the same exec id,
 *   whose registry attaches to the execution or replays its result. Only when that agent stays
 *   unreachable longer than `agentGoneMs` may an any-host task run elsewhere, once, and only on
 *   an agent it reaches at once (that bound is spent: no further wait); a pinned task, one with
 *   nowhere else to go or already moved, or one whose other agents are unreachable too, ends
 *   `unknown`.
 * - `unreachable` ("never ran") only for a task that certainly never started anywhere: every end
 *   without a result of its own goes through `lost()`, which says `unknown` (naming the agents it
 *   may have started on) as soon as it may have started on one.
 * - Attempts count dispatches that reached an agent, not breaker waits or busy refusals.
 * - A refusal (RESOURCE_EXHAUSTED) came before anything ran on that agent: an any-host task is
 *   sent to another agent with room, and waits (the agent's hint, else a backoff, within
 *   `busyWaitMs`) only when every agent it may use refuses it or is full; a pinned one waits for
 *   its agent. An agent that cannot take work (not only its slots taken) is kept off by every
 *   task of the worker (AgentPool.refused); a task that must wait for it says why, once.
 */
import { formatDuration, isGaxxError, lostReason, refusedUnstarted, SLOTS_FULL, type ErrorCode, type ExecRequest } from '../../proto/index.js';
import type { AgentEndpoint, AgentLink } from './agent-pool.js';
import { execOnce, StreamEnded, type ExecOutcome, type ExecSeen } from './exec-once.js';
import type { DispatchContext, Dispatched, DispatchState, JobHandle } from './dispatch.js';
import { place } from './placement.js';
import { backoffDelay, busyDelay, isTransportFailure, refusalKind, refusesWork, retryAfterHint, retryPolicy, type RetryPolicy } from './retry-policy.js';
import { outcomeOf, outputBytes, taskResult, type OutputChunk, type TaskResult } from '../queue/results.js';
import { signedTaskOf } from '../queue/sign.js';
import { DISPATCH_HISTORY, type TaskSpec } from '../queue/task.js';

/** How long to wait for a Cancelled task's exit when attaching to it after a cancel. */
const CANCEL_ATTACH_MS = 30_000;

/** What one pass of the dispatch loop decided. */
type Step = { done: Dispatched } | { again: true } | { giveUp: true };
/** Every outcome but `unreachable`, which only `lost()` decides. */
type Ended = Exclude<TaskResult['outcome'], 'unreachable'>;
const AGAIN: Step = { again: true };
const GIVE_UP: Step = { giveUp: true };

/**
 * The exec request of one execution of `spec`; `journal`: the journal identity of the agent it is
 * meant for (only that agent takes it; none: any).
 */
export function buildRequest(spec: TaskSpec, stdin: Buffer | undefined, execId: string, journal?: string): ExecRequest {
  return {
    // The operator's signature travels with every Exec; the agent checks it before running.
    ...(spec.signed ? { signed: signedTaskOf(spec, spec.signed) } : {}),
    taskId: execId,
    argv: spec.argv,
    env: spec.env,
    ...(stdin ? { stdin } : {}),
    timeoutMs: spec.timeoutMs ?? 0,
    ...(spec.workDir ? { workDir: spec.workDir } : {}),
    outputCapBytes: spec.outputCapBytes,
    ...(journal ? { journalId: journal } : {}),
  };
}

/** Resolves after `ms`, or at once when `signal` aborts (or had). */
export const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

export class TaskDispatch {
  private placedOn: string | undefined;
  private round: number;
  private infra = 0;
  private busySince = 0;
  private busy = 0;
  private attempts = 0;
  /** Waits on an open breaker that counted as tries (an agent never reached, or broken): said in the result. */
  private breakerTries = 0;
  private lastHost: string;
  private lastError = '';
  private readonly failedOn = new Set<string>();
  /** Agents that refused the task (RESOURCE_EXHAUSTED), each until when it is not sent there again. */
  private readonly refusedBy = new Map<string, number>();
  /** The refusals whoever follows the run was told of (agent and kind): each is said once. */
  private readonly told = new Set<string>();
  /** Agents that answered that they could not set this task up (it never started there). */
  private readonly notStartedOn = new Set<string>();
  private readonly startedOn: string[] = [];
  /**
   * The agent the current round was seen started on (it said Started, attached or replayed; an
   * exit ends the round): going back there, the task is only attached to or its end read, never
   * started anew (an agent that no longer knows it was replaced, or let its result expire).
   */
  private startedThisRound: string | undefined;
  /**
   * Where an execution of the task may have started, per round: the agent said Started or sent
   * its exit, the request went out, or an earlier worker saved that placement before its Exec.
   */
  private readonly mayHaveRun: { address: string; round: number }[] = [];
  /**
   * The agent the current round's last Exec went to, and the identity of its journal then (Info's
   * journal_id; '' for an agent without one). An agent that restarted keeps its journal and can
   * say what became of the task; a new agent at that address (another journal) cannot, so the
   * task is not sent there while it may have started on the one it replaced (`replacedSince`).
   */
  private sentTo: { address: string; journal: string; at?: number | undefined } | undefined;
  /**
   * The agent the current round goes back to existing-only though no Started was seen there: its
   * Exec went out before the agent's journal was known, and the agent there now restarted or was
   * replaced since (`whoIsThere`): only what its journal holds, never a new start.
   */
  private onlyExistingOn: string | undefined;
  /**
   * The output of this round's execution, as far as it came, and the time it was seen running
   * (from its Started to its stream's end): kept when its end is lost, for the result's output,
   * byte counts and duration.
   */
  private partial: { output: OutputChunk[]; ranMs: number } = { output: [], ranMs: 0 };
  /**
   * Why the task left an agent that stayed unreachable for `agentGoneMs`, once it did: that wait is
   * spent, and is not begun again for the other agents.
   */
  private moved: string | undefined;
  /** The agent the task may be running on and must go back to; since when it is unreachable. */
  private sticky: { address: string; since: number } | undefined;
  /** Since when every usable agent's breaker has been open (breaker waits are bounded by time). */
  private waitingSince = 0;
  /** The waits as the job last recorded them (waitsKey). */
  private savedWaits: string;
  private readonly seed = Math.floor(Math.random() * 1e6);
  private readonly policy: RetryPolicy;
  private readonly wakeCtl = new AbortController();
  private readonly wake = this.wakeCtl.signal;
  /** The pinned agent's address, and the endpoint naming the host it must prove to be. */
  private readonly pinned: string | undefined;
  private readonly pinnedEndpoint: AgentEndpoint | undefined;

  constructor(
    private readonly ctx: DispatchContext,
    private readonly spec: TaskSpec,
    private readonly job: JobHandle,
    private readonly endpoints: AgentEndpoint[],
    pinned: AgentEndpoint | undefined,
    private readonly stdin: Buffer | undefined,
  ) {
    this.pinned = pinned?.address;
    this.pinnedEndpoint = pinned;
    this.placedOn = spec.dispatch?.placedOn;
    this.round = spec.dispatch?.round ?? 0;
    // A task never placed anywhere (cancelled or refused before dispatch) names no host.
    this.lastHost = this.placedOn ?? this.pinned ?? '';
    this.policy = retryPolicy({ ...ctx.policy, backoffMs: spec.retry.backoffMs, attempts: spec.retry.attempts });
    // What the workers that had the job before saw: where it started, where it may have run before it moved.
    this.startedOn.push(...(spec.dispatch?.startedOn ?? []));
    for (const a of spec.dispatch?.mayHaveRunOn ?? []) this.mayHaveRunOn(a);
    this.sentTo = spec.dispatch?.sentTo;
    // The waits an earlier worker began go on from their start (a clock ahead of ours counts from now).
    const waits = spec.dispatch?.waits;
    const now = Date.now();
    const from = (t: number | undefined): number => (t === undefined ? 0 : Math.min(t, now));
    this.busySince = from(waits?.busy);
    this.waitingSince = from(waits?.breaker);
    this.moved = waits?.moved;
    // An earlier worker took the job (and saved an any-host task's placement) before its Exec:
    // the command may be running on that agent, or the pinned one.
    const before = job.takenBefore ? (this.placedOn ?? this.pinned) : undefined;
    if (before !== undefined) {
      this.sticky = { address: before, since: waits?.gone?.address === before ? from(waits.gone.since) : now };
      this.mayHaveRunOn(before);
    }
    this.savedWaits = this.waitsKey();
  }

  async run(): Promise<Dispatched> {
    if (this.job.cancel.aborted) return this.cancelledBetweenDispatches();
    const wakeUp = (): void => this.wakeCtl.abort();
    this.job.signal.addEventListener('abort', wakeUp, { once: true });
    this.job.cancel.addEventListener('abort', wakeUp, { once: true });
    // The agents this task may use stay known (and probed) while it runs.
    const release = this.ctx.pool.use(this.endpoints);
    try {
      return await this.loop();
    } finally {
      release();
      this.job.signal.removeEventListener('abort', wakeUp);
      this.job.cancel.removeEventListener('abort', wakeUp);
    }
  }

  /** The dispatch state a job records: where it goes, and what a worker taking it over must know of where it ran. */
  private state(): DispatchState {
    const startedOn = this.startedOn.slice(-DISPATCH_HISTORY);
    const mayHaveRunOn = this.roundMayHaveRunOn()
      .filter((a) => a !== this.placedOn)
      .slice(-DISPATCH_HISTORY);
    return {
      ...(this.placedOn !== undefined ? { placedOn: this.placedOn } : {}),
      round: this.round,
      ...(startedOn.length ? { startedOn } : {}),
      ...(mayHaveRunOn.length ? { mayHaveRunOn } : {}),
      ...(this.sentTo ? { sentTo: this.sentTo } : {}),
      ...(this.waits() ? { waits: this.waits() } : {}),
    };
  }

  /** The bounded waits under way, as a job records them (undefined: none). */
  private waits(): NonNullable<DispatchState['waits']> | undefined {
    const w = {
      ...(this.sticky ? { gone: { address: this.sticky.address, since: this.sticky.since } } : {}),
      ...(this.busySince ? { busy: this.busySince } : {}),
      ...(this.waitingSince ? { breaker: this.waitingSince } : {}),
      ...(this.moved !== undefined ? { moved: this.moved } : {}),
    };
    return Object.keys(w).length > 0 ? w : undefined;
  }

  private waitsKey(): string {
    return JSON.stringify(this.waits() ?? null);
  }

  /** Records the dispatch state with the job (its lock must still be this worker's). */
  private async save(): Promise<void> {
    await this.job.saveDispatch(this.state());
    this.savedWaits = this.waitsKey();
  }

  private execId(): string {
    return this.round === 0 ? this.job.id : `${this.job.id}.r${this.round}`;
  }

  private async loop(): Promise<Dispatched> {
    for (;;) {
      if (this.job.signal.aborted) throw new Error('dispatch aborted');
      if (this.job.cancel.aborted) return this.cancelledBetweenDispatches();
      const lost = this.stickyExpired();
      if (lost) return lost;
      // A wait that began (or ended) is recorded with the job before the next step waits on.
      if (this.waitsKey() !== this.savedWaits) await this.save();
      const step = await this.step();
      if ('done' in step) return step.done;
      if ('giveUp' in step) break;
    }
    // The tries the retries allowed, as they were spent: `attempts` counts only the requests sent.
    const tries = this.breakerTries
      ? `; ${this.attempts + this.breakerTries} tries: ${this.attempts} sent, ${this.breakerTries} while its circuit breaker was open (not sent)`
      : '';
    const why = (this.lastError || 'no agent reachable') + tries;
    return this.lost(this.moved === undefined ? why : `${this.moved}, and no other agent answered: ${why}`);
  }

  /** Records that the current round may have started on `addr`. */
  private mayHaveRunOn(addr: string): void {
    if (!this.mayHaveRun.some((m) => m.address === addr && m.round === this.round)) this.mayHaveRun.push({ address: addr, round: this.round });
  }

  /** The agents the current round may have started on, oldest first. */
  private roundMayHaveRunOn(): string[] {
    return this.mayHaveRun.filter((m) => m.round === this.round).map((m) => m.address);
  }

  /** More than one fresh start seen, or one execution that may have started on two agents (it moved). */
  private mayHaveRepeated(): boolean {
    return this.startedOn.length > 1 || this.roundMayHaveRunOn().length > 1;
  }

  /**
   * The task ends without a result of its own. `unreachable` ("never ran") only when it certainly
   * never started anywhere; once it may have started on an agent, `unknown`, naming that agent.
   */
  private lost(why: string): Dispatched {
    const maybe = [...new Set(this.mayHaveRun.map((m) => m.address))];
    if (maybe.length === 0) return this.finish('unreachable', 'UNAVAILABLE', why);
    const at = this.startedOn.at(-1) ?? (maybe.at(-1) as string);
    const others = maybe.filter((a) => a !== at);
    this.lastHost = at;
    const also = others.length ? `; it may also have started on ${others.join(', ')}` : '';
    return this.ended('unknown', 'UNAVAILABLE', `${this.startedOn.includes(at) ? 'started' : 'may have started'} on ${at}, outcome lost (${why})${also}`);
  }

  /**
   * Whether, after its agent stayed away for `agentGoneMs`, the task may run elsewhere: an
   * any-host task with another agent, that has not moved before (each move risks one more run).
   */
  private mayMove(from: string): boolean {
    return this.pinned === undefined && this.moved === undefined && this.endpoints.some((e) => e.address !== from);
  }

  /**
   * The sticky agent has been unreachable longer than the policy allows: an any-host task that may
   * move goes to another agent it reaches at once (the wait is spent: an unreachable one ends it
   * `unknown`, see `moved`); otherwise its outcome is lost.
   */
  private stickyExpired(): Dispatched | undefined {
    const s = this.sticky;
    if (!s || Date.now() - s.since < this.policy.agentGoneMs) return undefined;
    this.lastError = `${s.address} unreachable for ${Math.round((Date.now() - s.since) / 1000)} s`;
    if (!this.mayMove(s.address)) return this.lost(this.lastError);
    this.sticky = undefined;
    this.failedOn.add(s.address);
    this.placedOn = undefined;
    this.moved = this.lastError;
    return undefined;
  }

  /**
   * The run was cancelled while this worker had no Exec of the task open: before its first
   * dispatch, or between two (a backoff, a wait for its agent to come back); or while one was open
   * that then ended without the task's exit (the Cancel it sent unconfirmed). Where the current
   * round may have started (an earlier worker's dispatch, a stream that broke), Cancel it on that
   * agent when it runs, and have the agent replay its result when it ended (it ran: its real end,
   * not `cancelled`). Only a task that never started anywhere is reported cancelled; one whose
   * agent cannot be asked ends `unknown`.
   */
  private async cancelledBetweenDispatches(): Promise<Dispatched> {
    const maybe = this.roundMayHaveRunOn();
    const addr = maybe.at(-1);
    const notRun = this.round === 0 ? 'run cancelled before the task ran' : 'run cancelled before the task ran again';
    if (addr === undefined) return this.ended('cancelled', 'cancelled', notRun);
    const release = this.ctx.pool.use([this.agentAt(addr)]);
    try {
      return await this.cancelOn(addr, maybe, notRun);
    } finally {
      release();
    }
  }

  /** cancelledBetweenDispatches, once it knows the agent to ask (`addr`, held; the last of `maybe`). */
  private async cancelOn(addr: string, maybe: string[], notRun: string): Promise<Dispatched> {
    // The job's worker asks, not one whose lock on it is gone.
    await this.job.hold();
    const link = this.ctx.pool.link(this.agentAt(addr));
    this.lastHost = addr;
    const execId = this.execId();
    // A new agent at that address cannot say whether the one it replaced ran the task.
    const there = await this.whoIsThere(addr);
    if (there === undefined) return this.ended('unknown', 'UNAVAILABLE', `run cancelled; ${addr} could not be asked whether the task ran there`);
    const replaced = there.journal ? this.replacedSince(addr, there.journal) : undefined;
    if (replaced) return this.ended('unknown', 'UNAVAILABLE', `run cancelled; ${replaced}`);
    const journal = there.journal;
    const asked = await (link.cancelTask ? link.cancelTask(execId) : link.cancel(execId).then((found) => ({ found, finished: false }))).catch(() => undefined);
    if (!asked) return this.ended('unknown', 'UNAVAILABLE', `run cancelled; ${addr} could not be asked whether the task ran there`);
    if (!asked.found && !asked.finished) {
      // A Cancel names no journal: a new agent at that address knows nothing of the task, and
      // says so. An existing-only Exec meant for the agent the task went to (it starts nothing)
      // tells what that answer is worth: AGENT_REPLACED from a new agent, which cannot say
      // whether the one it replaced ran it; ALREADY_EXISTS from one that ran it and forgot it.
      const refused = await this.existingOnlyRefusal(link, execId, journal);
      if (isGaxxError(refused, 'ALREADY_EXISTS'))
        return this.ended('unknown', 'ALREADY_EXISTS', `run cancelled; the task ran on ${addr}, which no longer holds its result: ${refused.message}`);
      if (isGaxxError(refused, 'AGENT_REPLACED')) {
        this.ctx.pool.forgetJournal(this.agentAt(addr));
        const replaced = this.replacedSince(addr, undefined) ?? `the agent at ${addr} was replaced, and the new one cannot say whether the task ran there`;
        return this.ended('unknown', 'UNAVAILABLE', `run cancelled; ${replaced}`);
      }
      if (refused !== undefined && (refused instanceof StreamEnded || (isGaxxError(refused) && isTransportFailure(refused.code))))
        return this.ended('unknown', 'UNAVAILABLE', `run cancelled; ${addr} could not be asked whether the task ran there`);
      if (there.restartedSince) return this.ended('unknown', 'UNAVAILABLE', `run cancelled; ${this.unknownAgentGone(addr)}`);
      // Seen started there, and the agent there knows it no more (one that names no journal
      // replaced it, or its result expired): it ran, its outcome is lost.
      if (this.startedThisRound === addr)
        return this.ended(
          'unknown',
          'UNAVAILABLE',
          `run cancelled; started on ${addr}, which no longer knows the task (a new agent there, or its result expired)`,
        );
      // It moved here from an agent that stayed away: it may still have run there.
      const earlier = maybe.slice(0, -1);
      if (earlier.length)
        return this.ended('unknown', 'UNAVAILABLE', `run cancelled; the task may have started on ${earlier.join(', ')}, which could not be asked`);
      return this.ended('cancelled', 'cancelled', notRun);
    }
    // It ran there: attach (running: read on to the exit the Cancel causes) or have its result
    // replayed (ended). Existing only: the agent never starts it now.
    try {
      const req = { ...buildRequest(this.spec, this.stdin, execId, journal), existingOnly: true };
      const got = await execOnce(link, req, this.job.signal, new AbortController().signal, CANCEL_ATTACH_MS);
      this.attempts += 1;
      // It ran there (an earlier dispatch saw it start): the result names the agent.
      if (this.startedOn.at(-1) !== addr) this.startedOn.push(addr);
      return { result: this.exitResult(addr, got, outcomeOf(got.exit)), output: got.output };
    } catch (e) {
      // The stop went to a new agent at that address (which holds nothing of the task): not the one it went to.
      if (isGaxxError(e, 'AGENT_REPLACED')) {
        this.ctx.pool.forgetJournal(this.agentAt(addr));
        return this.ended(
          'unknown',
          'UNAVAILABLE',
          `run cancelled; ${this.replacedSince(addr, undefined) ?? `the agent at ${addr} was replaced before the task's end was read`}`,
        );
      }
      return asked.found
        ? this.ended('cancelled', 'cancelled', 'run cancelled; stop sent to the agent')
        : this.ended('unknown', 'UNAVAILABLE', `run cancelled; the task ran on ${addr} but its result could not be read`);
    }
  }

  /**
   * Why the task must not go to `addr` now that the agent there has journal `journal`: the current
   * round's Exec went there to an agent with another journal, and may have started there (its
   * request went out, it said Started, or an earlier worker sent it). That agent was replaced (a
   * new agent with a journal of its own, as a spawn --fill puts there): the new one would start
   * the task from the beginning, and cannot say whether the one it replaced ran it. Undefined
   * when it may go (the same agent, restarted or not: its journal says what became of the task;
   * or an agent that names no journal, as before).
   */
  private replacedSince(addr: string, journal: string | undefined): string | undefined {
    const sent = this.sentTo;
    if (!sent || sent.address !== addr || !sent.journal || journal === '' || sent.journal === journal) return undefined;
    if (!this.roundMayHaveRunOn().includes(addr)) return undefined;
    // undefined: the agent there refused an Exec meant for that journal (AGENT_REPLACED).
    const ids = journal === undefined ? `agent journal ${sent.journal}` : `agent journal ${sent.journal}, now ${journal}`;
    return this.startedThisRound === addr
      ? `the agent there was replaced before the task's end was read (${ids}), so it is not run again`
      : `sent to ${addr}, which was replaced before it answered (${ids}): it may have run, so it is not run again`;
  }

  /**
   * Why the agent refuses an existing-only Exec of `execId` meant for journal `journal` (it starts
   * nothing): NOT_FOUND (it never had it), ALREADY_EXISTS (it ran it and forgot it),
   * AGENT_REPLACED (a new agent), or a transport failure; undefined when it had the task.
   */
  private async existingOnlyRefusal(link: AgentLink, execId: string, journal: string | undefined): Promise<Error | undefined> {
    const req = { ...buildRequest(this.spec, this.stdin, execId, journal), existingOnly: true };
    try {
      await execOnce(link, req, this.job.signal, new AbortController().signal, CANCEL_ATTACH_MS);
      return undefined;
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  }

  /** Why a task whose agent was not known when its Exec went out is not run again (see `whoIsThere`). */
  private unknownAgentGone(addr: string): string {
    return `sent to ${addr} before the agent there was known, which restarted or was replaced before it answered and does not hold the task: it may have run, so it is not run again`;
  }

  /**
   * Which agent to send the task to at `addr`: the journal this worker knows there, else the one
   * the round's Exec went to (saved by an earlier worker: the agent then refuses the Exec if it
   * was replaced). When the round may have started there from an Exec that went out before the
   * agent's journal was known (the first to that agent, whose answer never came), the agent is
   * asked (Info, only then): one that runs since before that Exec is the one that took it (one
   * process listens on an address); one started since (`restartedSince`) restarted or replaced
   * it, which cannot be told apart: the task goes there existing-only. It is asked even when
   * this worker learned a journal there since (another task's Started, Info): that may be a new
   * agent's, learned after it replaced the one the Exec went to. Undefined when the agent could
   * not be asked (`failure` says why).
   */
  private async whoIsThere(addr: string, into?: { failure?: unknown }): Promise<{ journal: string | undefined; restartedSince: boolean } | undefined> {
    const agent = this.agentAt(addr);
    const sent = this.sentTo?.address === addr ? this.sentTo : undefined;
    const journal = this.ctx.pool.knownJournal(agent) ?? (sent?.journal || undefined);
    if (!sent || sent.journal !== '' || !this.roundMayHaveRunOn().includes(addr)) return { journal, restartedSince: false };
    try {
      const now = await this.ctx.pool.askJournal(agent);
      if (!now.journal) return { journal: undefined, restartedSince: false };
      if (sent.at !== undefined && now.upSince < sent.at) {
        this.sentTo = { ...sent, journal: now.journal };
        return { journal: now.journal, restartedSince: false };
      }
      return { journal: now.journal, restartedSince: true };
    } catch (e) {
      if (into) into.failure = e;
      return undefined;
    }
  }

  /**
   * The agent answered ALREADY_EXISTS: it ran this exec id (signed work, whose id stays spent
   * until its signature expires) and no longer holds its result (`--task-retention`). It ran
   * there; its outcome is lost: `unknown`, never `error` (nothing failed) nor run again.
   */
  private spent(addr: string, e: Error): Dispatched {
    this.mayHaveRunOn(addr);
    if (this.startedOn.at(-1) !== addr) this.startedOn.push(addr);
    this.lastHost = addr;
    return this.ended('unknown', 'ALREADY_EXISTS', `started on ${addr}, outcome lost (${addr} ran it and no longer holds its result: ${e.message})`);
  }

  /** A result of the dispatcher's own (no exit from an agent); `unreachable` only through `lost()`. */
  private ended(outcome: Ended, reason: string, error: string): Dispatched {
    const maybe = this.roundMayHaveRunOn();
    // An agent's refusal (or a busy wait given up) after the task may have started: say where.
    const where = outcome === 'error' && maybe.length ? `; the task may have started on ${maybe.join(', ')}` : '';
    return this.finish(outcome, reason, error + where);
  }

  private finish(outcome: TaskResult['outcome'], reason: string, error: string): Dispatched {
    // What was seen of an execution whose end is lost: its output's bytes, the time it ran.
    const { output, ranMs } = outcome === 'unknown' || outcome === 'cancelled' ? this.partial : { output: [], ranMs: 0 };
    const seen = {
      durationMs: ranMs,
      stdoutBytes: outputBytes(output, 1),
      stderrBytes: outputBytes(output, 2),
    };
    const result = taskResult(
      { runId: this.spec.runId, taskId: this.spec.taskId, host: this.lastHost, outcome, reason },
      { error, ...seen, attempts: this.attempts, startedOn: [...this.startedOn], mayHaveRepeated: this.mayHaveRepeated() },
    );
    // A task whose end is lost (its agent went away, a stop not confirmed) keeps the output that came.
    return { result, output: outcome === 'unknown' || outcome === 'cancelled' ? this.partial.output : [] };
  }

  private exitResult(host: string, got: ExecOutcome, outcome: TaskResult['outcome']): TaskResult {
    const x = got.exit;
    this.mayHaveRunOn(host);
    const outcomeLost = outcome === 'unknown' ? `started on ${host}, outcome lost: ${x.error || 'the agent restarted while it ran'}` : x.error;
    const startLost = this.startLost(got);
    // It moved here from an agent that stayed away, where it may have run too: say which.
    const elsewhere = this.roundMayHaveRunOn().filter((a) => a !== host);
    const error = [outcomeLost, startLost, elsewhere.length ? `it may also have started on ${elsewhere.join(', ')}` : ''].filter(Boolean).join('; ');
    return taskResult(
      { runId: this.spec.runId, taskId: this.spec.taskId, host, outcome, reason: x.reason },
      {
        exitCode: x.signal || outcome === 'unknown' ? null : x.code,
        signal: x.signal || null,
        ...(error ? { error } : {}),
        durationMs: Number(x.durationMs),
        stdoutBytes: Number(x.stdoutBytes),
        stderrBytes: Number(x.stderrBytes),
        truncated: x.truncated || startLost !== undefined,
        outputCapped: x.outputCapped,
        outputLost: startLost !== undefined,
        attempts: this.attempts,
        startedOn: [...this.startedOn],
        mayHaveRepeated: this.mayHaveRepeated(),
        attached: got.started?.attached ?? false,
        replayed: got.started?.replayed ?? false,
      },
    );
  }

  /**
   * Why the output of an execution this dispatch attached to (or whose end it replayed) lacks its
   * start, when it does: the agent kept only its last bytes (its replay buffer), as after an
   * earlier dispatch whose result Redis would not take. Undefined when the output is whole.
   */
  private startLost(got: ExecOutcome): string | undefined {
    const s = got.started;
    if (!s || !(s.attached || s.replayed) || s.fromStart) return undefined;
    const kept = got.output.reduce((n, c) => n + c.data.length, 0);
    const total = Number(got.exit.stdoutBytes) + Number(got.exit.stderrBytes);
    return `the start of its output was lost (it was read back from ${this.lastHost} after an earlier dispatch's result was not published): only the agent's last ${kept} of ${total} bytes were kept`;
  }

  /** Placement, honouring the sticky agent; breaker waits are not attempts (bounded by time). */
  private async step(): Promise<Step> {
    const candidates = this.endpoints.map((e) => e.address);
    const pinned = this.pinned ?? this.sticky?.address;
    const snapshot = this.ctx.pool.snapshot(candidates.map((a) => this.agentAt(a)));
    const now = Date.now();
    const p = place({ pinned, candidates, placedOn: this.placedOn, failedOn: this.failedOn, refusedBy: this.refusedBy, now, seed: this.seed }, snapshot);
    if (p.kind === 'none') return { done: this.ended('error', 'NOT_FOUND', `no agent for this task (${p.reason})`) };
    if (p.kind === 'wait' && p.reason === 'refused') return this.waitRefused(p.until ?? now, pinned === undefined ? candidates : [pinned]);
    // Waiting for a slot of this worker's own tasks: not a refusal, whose wait is bounded.
    if (p.kind === 'wait' && p.reason === 'busy') this.busySince = 0;
    if (p.kind === 'wait') {
      // Moved after its agent stayed away: that wait is spent, it does not begin again for the others.
      if (p.reason === 'breaker-open' && this.sticky === undefined && (this.moved !== undefined || this.breakerWaitExhausted(pinned))) return GIVE_UP;
      // Full at the assumed capacity: ask the agents this task may use theirs (the answers wake this wait).
      if (p.reason === 'busy') this.ctx.pool.learnCapacity(pinned === undefined ? candidates.map((a) => this.agentAt(a)) : [this.agentAt(pinned)]);
      await this.ctx.pool.waitForChange(this.waitMs(p.until), this.wake);
      return AGAIN;
    }
    this.waitingSince = 0;
    return this.dispatchTo(p.address);
  }

  /**
   * The endpoint whose identity the agent at `addr` must prove: the pinned host's for a pinned
   * task (a fleet record may give two hosts one address; the first listed is not necessarily
   * this task's), else the one listed at that address.
   */
  private endpointAt(addr: string): AgentEndpoint | undefined {
    if (addr === this.pinned && this.pinnedEndpoint) return this.pinnedEndpoint;
    return this.endpoints.find((e) => e.address === addr);
  }

  /** How long to wait for a change: until the breaker probes again, but not past the end of the wait for a gone agent. */
  private waitMs(until: number | undefined): number {
    const now = Date.now();
    const since = this.sticky?.since ?? (this.waitingSince || undefined);
    const bound = since === undefined ? Infinity : since + this.policy.agentGoneMs - now + 5;
    return Math.max(1, Math.min(until ? until - now + 5 : 1000, bound));
  }

  /** The agent at `addr` this task talks to: its address and the identity it must prove (endpointAt). */
  private agentAt(addr: string): AgentEndpoint {
    return this.endpointAt(addr) ?? { address: addr };
  }

  /**
   * An agent never reached counts its breaker waits as attempts (fail fast); a known one gets
   * `agentGoneMs`, unless it answered that it could not set this task up (it is there, and
   * broken: its own word stays the task's error, not "unreachable").
   */
  private breakerWaitExhausted(pinned: string | undefined): boolean {
    const known =
      pinned === undefined ? this.endpoints.some((e) => this.ctx.pool.everReached(this.agentAt(e.address))) : this.ctx.pool.everReached(this.agentAt(pinned));
    const refused = pinned === undefined ? this.endpoints.every((e) => this.notStartedOn.has(e.address)) : this.notStartedOn.has(pinned);
    if (!known || refused) {
      this.breakerTries += 1;
      return ++this.infra >= this.policy.attempts;
    }
    if (this.waitingSince === 0) this.waitingSince = Date.now();
    if (Date.now() - this.waitingSince < this.policy.agentGoneMs) return false;
    this.lastError = `agent unreachable for ${Math.round((Date.now() - this.waitingSince) / 1000)} s`;
    return true;
  }

  private async dispatchTo(addr: string): Promise<Step> {
    this.lastHost = addr;
    // The slot is taken before anything awaits: placement chose it from a snapshot, and a task
    // placed meanwhile must see it taken, or an agent is sent more tasks than its capacity.
    const agent = this.agentAt(addr);
    let existingOnly = this.startedThisRound === addr || this.onlyExistingOn === addr;
    this.ctx.pool.acquire(agent);
    let got: ExecOutcome | undefined;
    let failure: unknown;
    const seen: ExecSeen = {};
    try {
      // Which agent is there (its journal identity); a failure to ask is one of an Exec that never went out.
      const asked: { failure?: unknown } = {};
      const there = await this.whoIsThere(addr, asked);
      failure = asked.failure;
      if (there !== undefined) {
        const journal = there.journal;
        const replaced = this.replacedSince(addr, journal);
        if (replaced) return { done: this.lost(replaced) };
        if (there.restartedSince) {
          this.onlyExistingOn = addr;
          existingOnly = true;
        }
        // Only while this worker still holds the job, checked right before the Exec (in one step
        // with saving a new placement): a worker that took the job over dispatches it from the
        // placement it read, and this one's copy may be stale (it waited for a slot meanwhile).
        // A pinned task can only go back to its agent, so only any-host placements are saved;
        // and the agent the Exec goes to (its journal, or when it went while its journal is not
        // known), whenever it is another than the one saved, pinned task or not: a worker that
        // takes the job over needs it to tell a new agent there from the one that may run it; and
        // the waits under way when they changed since last saved (a taker goes on with them).
        const sameAgent = this.sentTo?.address === addr && this.sentTo.journal === (journal ?? '');
        const save = (this.placedOn !== addr && this.pinned === undefined) || !sameAgent || this.waitsKey() !== this.savedWaits;
        this.placedOn = addr;
        // When it went (a worker that takes the job over compares it with the agent's uptime).
        this.sentTo = sameAgent && this.sentTo ? this.sentTo : { address: addr, journal: journal ?? '', at: Date.now() };
        await (save ? this.save() : this.job.hold());
        // Cancelled during that check: ended as between dispatches (nothing was sent this time).
        if (this.job.cancel.aborted) return AGAIN;
        this.attempts += 1;
        try {
          const link = this.ctx.pool.link(agent);
          const deadline = this.spec.timeoutMs ? this.spec.timeoutMs + 30_000 : undefined;
          // Meant for that journal's agent only: one that replaced it meanwhile refuses it (AGENT_REPLACED).
          const req = buildRequest(this.spec, this.stdin, this.execId(), journal);
          got = await execOnce(link, existingOnly ? { ...req, existingOnly } : req, this.job.signal, this.job.cancel, deadline, this.job.live, seen);
        } catch (e) {
          failure = e;
        }
      }
    } finally {
      this.ctx.pool.release(agent);
    }
    // The agent said the task never started there (it could not set it up, e.g. its data dir is
    // read-only): a Started that came first (its sandbox's process) was no start of the task, no
    // result of it is held there, and it may run elsewhere (onError: a transport failure that
    // went nowhere).
    const saw: ExecSeen = got === undefined && refusedUnstarted(failure) ? {} : seen;
    if (saw.started) this.partial = { output: saw.output ?? [], ranMs: saw.startedAt === undefined ? 0 : Math.max(0, Date.now() - saw.startedAt) };
    if (got !== undefined || saw.started) this.mayHaveRunOn(addr);
    if (saw.started) this.startedThisRound = addr;
    // The agent the Exec went to names its journal in its Started: later Execs are meant for it alone.
    const named = saw.started?.journalId;
    if (named) {
      this.ctx.pool.learnJournal(agent, named);
      if (this.sentTo?.address === addr) this.sentTo = { ...this.sentTo, journal: named };
    }
    if (saw.started && !saw.started.attached && !saw.started.replayed) this.startedOn.push(addr);
    // An agent that attached this dispatch to the execution (or replayed its end) had started it,
    // though an earlier dispatch (another worker's, or this job's earlier attempt) saw the start;
    // so had one that reports the task lost (in its restart: its journal says so; or with its
    // launcher), even when that task's Started never reached us: the result names it either way.
    else if ((saw.started || lostReason(got?.exit.reason)) && this.startedOn.at(-1) !== addr) this.startedOn.push(addr);
    if (got === undefined) {
      if (this.job.signal.aborted) throw failure;
      if (this.job.cancel.aborted) {
        // Cancelled while the Exec was open, and it ended without the task's exit: the Cancel the
        // stream sent may never have reached the agent that runs the task (it failed on the way,
        // or a new agent at that address answered it), so nobody confirmed a stop. Asked as
        // between dispatches: attach to read its real end, or `unknown` when the agent there was
        // replaced or cannot be asked; `cancelled` only for an Exec that never went out, or a stop
        // that agent acknowledged.
        if (failure instanceof StreamEnded || (isGaxxError(failure) && failure.details?.requestSent === true)) this.mayHaveRunOn(addr);
        return { done: await this.cancelledBetweenDispatches() };
      }
      // A new agent took the address since its journal was learned: nothing started now. Where
      // the round may have started on the agent it replaced, not run again; else it runs there
      // (its journal learned from its Started).
      if (isGaxxError(failure, 'AGENT_REPLACED')) {
        this.ctx.pool.forgetJournal(agent);
        const replaced = this.replacedSince(addr, undefined);
        if (replaced) return { done: this.lost(replaced) };
        // Nothing of this round can have started there: the next Exec is recorded (and saved) anew.
        if (this.sentTo?.address === addr) this.sentTo = undefined;
        this.lastError = `AGENT_REPLACED: ${(failure as Error).message}`;
        return ++this.infra >= this.policy.attempts ? GIVE_UP : AGAIN;
      }
      if (existingOnly && this.onlyExistingOn === addr && this.startedThisRound !== addr && isGaxxError(failure) && failure.code === 'NOT_FOUND')
        return { done: this.lost(this.unknownAgentGone(addr)) };
      // It started there, and the agent there no longer knows it: its outcome is lost, and it is
      // not run again (a new agent at that address, e.g. one a spawn --fill put there with a
      // journal of its own, would start it from the beginning).
      if (existingOnly && isGaxxError(failure) && failure.code === 'NOT_FOUND')
        return { done: this.lost(`${addr} no longer knows the task (a new agent there, or its result expired), so it is not run again`) };
      return this.onError(addr, failure, saw);
    }
    this.sticky = undefined;
    this.ctx.pool.success(agent);
    return this.onExit(addr, got);
  }

  private async onExit(addr: string, got: ExecOutcome): Promise<Step> {
    if (got.started) this.ctx.metrics?.dispatchLatency.observe(Math.max(0, got.startedAt - this.job.enqueuedAt) / 1000);
    const outcome = outcomeOf(got.exit);
    if (
      outcome !== 'succeeded' &&
      outcome !== 'unknown' &&
      !this.job.cancel.aborted &&
      this.spec.retry.retryOnFailure &&
      this.round + 1 < this.spec.retry.attempts
    ) {
      this.round += 1;
      this.startedThisRound = undefined;
      // That execution ended: its output is not the next one's, whatever becomes of that.
      this.partial = { output: [], ranMs: 0 };
      this.onlyExistingOn = undefined;
      this.sentTo = undefined;
      this.ctx.metrics?.retries.inc({ kind: 'failure' });
      await this.save();
      await sleep(backoffDelay(this.round, { baseMs: this.policy.backoffMs, maxMs: this.policy.backoffMaxMs }), this.wake);
      return AGAIN;
    }
    return { done: { result: this.exitResult(addr, got, outcome), output: got.output } };
  }

  private async onError(addr: string, e: unknown, seen: ExecSeen): Promise<Step> {
    const code: ErrorCode = e instanceof StreamEnded ? 'UNAVAILABLE' : isGaxxError(e) ? e.code : 'INTERNAL';
    this.lastError = `${code}: ${(e as Error).message}`;
    // Refused before anything ran (RESOURCE_EXHAUSTED, or another code with the agent's reason:
    // a read-only disk is FILE_ACCESS): neither the task's error nor a transport failure.
    if (refusesWork(e)) return this.onBusy(addr, e, code);
    this.busySince = 0;
    if (code === 'ALREADY_EXISTS') return { done: this.spent(addr, e as Error) };
    if (!isTransportFailure(code)) return { done: this.ended('error', code, this.lastError) };
    this.ctx.pool.failure(this.agentAt(addr));
    this.ctx.metrics?.retries.inc({ kind: 'transport' });
    const sent = e instanceof StreamEnded || seen.started !== undefined || (isGaxxError(e) && e.details?.requestSent === true);
    if (sent || this.sticky?.address === addr) {
      // It may be running there: go back to the same agent (attach or replay), never elsewhere.
      if (sent) this.mayHaveRunOn(addr);
      if (this.sticky === undefined) {
        this.sticky = { address: addr, since: Date.now() };
        // Said now, not only when the wait ends (minutes later): whoever follows the run knows why
        // it waits, and what happens then.
        const otherwise = this.mayMove(addr)
          ? 'else it runs on another agent that answers at once (it may then run twice), or its outcome is lost when none does'
          : 'else its outcome is lost';
        this.job.note?.(
          `task ${this.spec.taskId}: ${addr} went away while the task ${seen.started ? 'ran there' : 'may have started there'} (${this.lastError}); waiting up to ${formatDuration(this.policy.agentGoneMs)} for it to come back, ${otherwise}`,
        );
      }
      // A short pause only: the agent's breaker paces the retries (its probe wakes the wait the
      // moment the agent answers again), bounded by agentGoneMs.
      await sleep(backoffDelay(Math.min(++this.infra, 2), { baseMs: this.policy.backoffMs, maxMs: this.policy.backoffMaxMs }), this.wake);
      return AGAIN;
    }
    this.failedOn.add(addr);
    if (refusedUnstarted(e)) this.notStartedOn.add(addr);
    if (this.pinned === undefined) this.placedOn = undefined;
    // Moved after its agent stayed away: the wait is spent, an agent it cannot reach ends it.
    if (this.moved !== undefined || ++this.infra >= this.policy.attempts) return GIVE_UP;
    await sleep(backoffDelay(this.infra, { baseMs: this.policy.backoffMs, maxMs: this.policy.backoffMaxMs }), this.wake);
    return AGAIN;
  }

  /**
   * The agent refused the task (RESOURCE_EXHAUSTED: its slots are taken by others' tasks, or it
   * has not freed ours yet; or it cannot take work: its disk, a rate limit): not an attempt. The
   * task is not sent there again before the agent's hint (else a backoff); placement sends an
   * any-host task to another agent with room meanwhile, the refusal having come before anything
   * ran there. An agent that cannot take work is kept off by every task (and logged: the pool).
   * `code`: the refusal's (RESOURCE_EXHAUSTED, FILE_ACCESS for a read-only disk...), the task's
   * reason when the wait ends.
   */
  private onBusy(addr: string, e: unknown, code: ErrorCode): Step {
    this.attempts -= 1;
    const now = Date.now();
    if (this.busySince === 0) this.busySince = now;
    if (now - this.busySince > this.policy.busyWaitMs) return { done: this.ended('error', code, this.lastError) };
    this.ctx.metrics?.retries.inc({ kind: 'busy' });
    const until = now + busyDelay(++this.busy, retryAfterHint(e), this.policy);
    this.refusedBy.set(addr, until);
    const kind = refusalKind(e);
    if (kind !== SLOTS_FULL) this.ctx.pool.refused(this.agentAt(addr), { kind, message: (e as Error).message, code }, until);
    // Nothing of this task runs there (one that may, is sticky and goes back to it): free to go elsewhere.
    if (this.pinned === undefined && this.sticky === undefined && this.placedOn === addr) this.placedOn = undefined;
    return AGAIN;
  }

  /**
   * Every agent this task may use (`agents`: its pinned one, or all) refuses it until `until`:
   * wait for that, within `busyWaitMs` of the first refusal. An agent that cannot take work (not
   * only its slots taken) is named, once, to whoever follows the run: why the task waits, and
   * for how long.
   */
  private async waitRefused(until: number, agents: string[]): Promise<Step> {
    const now = Date.now();
    if (this.busySince === 0) this.busySince = now;
    const refusals = agents.flatMap((address) => {
      const r = this.ctx.pool.refusal(this.agentAt(address));
      return r ? [{ address, ...r }] : [];
    });
    // Kept off by the refusals other tasks met: theirs is the reason this task ends with, and
    // its result names the agent (it was sent to none).
    const code = refusals[0]?.code ?? 'RESOURCE_EXHAUSTED';
    if (refusals.length) {
      this.lastError = `${code}: ${refusals.map((r) => r.message).join('; ')}`;
      this.lastHost ||= (refusals[0] as { address: string }).address;
    }
    if (now - this.busySince > this.policy.busyWaitMs) return { done: this.ended('error', code, this.lastError) };
    this.tellRefusals(refusals);
    const left = this.busySince + this.policy.busyWaitMs - now + 5;
    await this.ctx.pool.waitForChange(Math.max(1, Math.min(until - now + 5, left)), this.wake);
    return AGAIN;
  }

  /** Says why the task waits, once per agent and reason: one that must stay on its agent, or one every agent refuses. */
  private tellRefusals(refusals: { address: string; kind: string; message: string }[]): void {
    const keys = refusals.map((r) => `${r.address}\u0000${r.kind}`);
    if (keys.every((k) => this.told.has(k))) return;
    for (const k of keys) this.told.add(k);
    const wait = formatDuration(this.policy.busyWaitMs);
    const stays = this.pinned ?? this.sticky?.address;
    const why = refusals.map((r) => r.message).join('; ');
    if (stays !== undefined) {
      this.job.note?.(
        `task ${this.spec.taskId}: ${stays} refuses new tasks; waiting up to ${wait} for it to take them again, else the task ends error: ${why}`,
      );
      return;
    }
    // Every waiting task of the run would say the same: said once for them.
    this.job.note?.(
      `task ${this.spec.taskId}: no agent it may use takes it now; waiting up to ${wait} for one to, else it ends error (said once for the run's tasks that wait so): ${why}`,
      keys.sort().join('\u0000'),
    );
  }
}
