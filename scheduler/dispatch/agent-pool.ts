/**
 * The worker's view of the agents it dispatches to: per agent, that is per address AND the
 * identity expected there (agentKey), one client, a breaker, a capacity (from Info, asked only
 * once an agent is full at the assumed capacity), its journal identity (`knownJournal`), an
 * in-flight count, and why it refuses new
 * tasks when it said it cannot take work (see `refused`). Keyed so, an address
 * that another fleet's agent took over (providers reuse addresses) is a new agent with a closed
 * breaker, never the old one's verdict probed with the old identity for ever. An agent no task
 * names any more (`use`) is forgotten after `forgetUnusedMs`: its client closed, no more probes.
 * Open breakers are probed through the Health service
 * with a fresh connection (an old grpc-js channel may sit in its reconnect backoff long after
 * the agent came back). Waiters are woken whenever a slot frees or a breaker changes. The probe
 * timer runs only while some breaker is open or half-open: a closed breaker changes only with a
 * call's outcome, and a worker with every agent well (a daemon waiting for work) is not woken
 * five times a second for nothing.
 */
import { isGaxxError, type ErrorCode, type ExecEvent__Output, type ExecRequest, type InfoResponse__Output } from '../../proto/index.js';
import { Breaker, DEFAULT_BREAKER, type BreakerOptions, type BreakerState } from './breaker.js';
import type { AgentView } from './placement.js';
import { isTransportFailure } from './retry-policy.js';

/** Where an agent is and who it must prove to be (fleet agents: `spiffe://gaxx/agent/<fleet>/<host>`). */
export interface AgentEndpoint {
  address: string;
  expect?: { fleet?: string; host?: string };
}

/**
 * The endpoint of a fleet's agent, its identity pinned: one shape for every place that connects
 * to one (the worker, the daemon's connections at its start, a run's own prewarm), so that a
 * link opened ahead is the one the worker's task asks for (warmingConnector keys them alike).
 */
export function fleetEndpoint(fleet: string, agent: { address: string; host: string }): AgentEndpoint {
  return { address: agent.address, expect: { fleet, host: agent.host } };
}

/** The identity part of a link's key: one link per address and pinned identity (none: ''). */
export function identityKey(expect: AgentEndpoint['expect']): string {
  return expect ? `${expect.fleet ?? ''}/${expect.host ?? ''}` : '';
}

/**
 * The key of an agent's state (breaker, client, slots) wherever it is kept or published:
 * `<fleet>/<host>@<address>`, or the bare address for an agent pinned to no fleet identity.
 */
export function agentKey(ep: AgentEndpoint): string {
  const id = identityKey(ep.expect);
  return id ? `${id}@${ep.address}` : ep.address;
}

/** The part of AgentClient the worker uses. */
export interface AgentLink {
  exec(req: ExecRequest, opts?: { signal?: AbortSignal; deadlineMs?: number }): AsyncIterable<ExecEvent__Output>;
  info(): Promise<InfoResponse__Output>;
  health(): Promise<string>;
  /** Stops a running task by exec id; false when the agent has none running under it. */
  cancel(taskId: string): Promise<boolean>;
  /** As cancel; also says whether the agent holds the result of a task with that id that ended (none: unknown). */
  cancelTask?(taskId: string): Promise<{ found: boolean; finished: boolean }>;
  /** Starts connecting without a call (see warmingConnector). */
  warm(): void;
  close(): void;
}

/** Opens a client for an agent (AgentClient.connect with the scheduler's certificate). */
export type AgentConnector = (endpoint: AgentEndpoint) => AgentLink;

/**
 * How long an agent no task names stays known (its breaker, client and capacity kept for the
 * next run; an open breaker still probed): an agent closes a connection idle this long anyway.
 */
export const FORGET_UNUSED_MS = 5 * 60_000;

export interface AgentPoolOptions {
  breaker?: BreakerOptions;
  /** Slots assumed until Info answers, and when it reports none. */
  defaultCapacity?: number;
  /** How often open breakers are checked for a probe. */
  probeIntervalMs?: number;
  /** An agent no task names for this long is forgotten (default FORGET_UNUSED_MS). */
  forgetUnusedMs?: number;
  /** Called whenever a breaker changes state (metrics, logs). */
  onBreaker?: (agent: AgentEndpoint, state: BreakerState) => void;
  /** Called whenever an agent refuses a task because it cannot take work (logs: see `refused`). */
  onRefused?: (agent: AgentEndpoint, refusal: AgentRefusal) => void;
}

/** Why an agent refuses new tasks (a RESOURCE_EXHAUSTED that is not its slots being taken). */
export interface AgentRefusal {
  /** The agent's refusal kind (`gaxx-refusal`: disk-reserve, disk, rate-limit, calls...). */
  kind: string;
  /** The agent's message. */
  message: string;
  /** The refusal's code (RESOURCE_EXHAUSTED unless said: FILE_ACCESS for a read-only disk...). */
  code?: ErrorCode;
}

/** One agent's breaker state, as metrics and `gaxx status` show it. */
export interface AgentBreaker {
  agent: AgentEndpoint;
  state: BreakerState;
}

interface AgentState {
  /** Where the agent is and the identity it must prove: every call of this state pins it. */
  endpoint: AgentEndpoint;
  /** The client its tasks, Info and probes share (reconnected after the breaker opened). */
  link: AgentLink | undefined;
  breaker: Breaker;
  capacity: number;
  /** `capacity` is the assumed one: Info has not answered (nor failed). */
  assumed: boolean;
  inflight: number;
  /** It said it cannot take work: why, and until when no task is sent to it. */
  refusal: (AgentRefusal & { until: number }) | undefined;
  /** Info asked (in flight or answered); reset when the breaker opens, so it is asked again. */
  info: Promise<void> | undefined;
  /**
   * The journal identity of the agent there (Started's or Info's journal_id; '' for an agent that
   * has none), see `knownJournal`; forgotten when the agent refuses an Exec meant for it
   * (AGENT_REPLACED).
   */
  journal: string | undefined;
  lastState: BreakerState;
  /** Some call reached this agent since the pool knows it (a restart is then worth waiting for). */
  reached: boolean;
  /** Tasks that name it now (`use`); none since `unusedSince`. */
  users: number;
  unusedSince: number;
  /** Forgotten: calls still out on it change nothing. */
  gone: boolean;
}

/** Agents by agentKey (address and expected identity), shared by every job a worker runs. */
export class AgentPool {
  private readonly agents = new Map<string, AgentState>();
  private waiters: Array<() => void> = [];
  /** The probe timer, while `unsettled` > 0. */
  private timer: NodeJS.Timeout | undefined;
  /** Agents whose breaker was last seen open or half-open. */
  private unsettled = 0;

  constructor(
    private readonly connect: AgentConnector,
    private readonly opts: AgentPoolOptions = {},
  ) {}

  /**
   * Makes the agents known (no call is made) and holds them until the returned release is
   * called (once; later calls do nothing): a task holds the agents it may use while it runs. An
   * agent nobody holds is forgotten `forgetUnusedMs` later. Each starts with the assumed
   * capacity: a task placed on an idle agent never waits for Info, and Info is asked only when
   * placement finds an agent full at what is assumed (`learnCapacity`), so a run of one task per
   * host costs each agent one call, its Exec.
   */
  use(endpoints: readonly AgentEndpoint[]): () => void {
    this.forgetUnused(Date.now());
    const held = [...new Map(endpoints.map((ep) => [agentKey(ep), ep])).values()].map((ep) => this.stateOf(ep));
    for (const s of held) s.users += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const now = Date.now();
      for (const s of held) if (--s.users === 0) s.unusedSince = now;
    };
  }

  private stateOf(ep: AgentEndpoint): AgentState {
    const key = agentKey(ep);
    let s = this.agents.get(key);
    if (!s) {
      s = {
        endpoint: { address: ep.address, ...(ep.expect ? { expect: ep.expect } : {}) },
        link: undefined,
        breaker: new Breaker(this.opts.breaker ?? DEFAULT_BREAKER),
        capacity: this.opts.defaultCapacity ?? 1,
        assumed: true,
        inflight: 0,
        refusal: undefined,
        info: undefined,
        journal: undefined,
        lastState: 'closed',
        reached: false,
        users: 0,
        unusedSince: Date.now(),
        gone: false,
      };
      this.agents.set(key, s);
    }
    return s;
  }

  private find(ep: AgentEndpoint): AgentState | undefined {
    return this.agents.get(agentKey(ep));
  }

  /**
   * Drops the agents nobody held for `forgetUnusedMs`: their clients closed, their breakers no
   * longer probed (an agent deleted with its fleet is not asked after for ever).
   */
  private forgetUnused(now: number): void {
    const after = this.opts.forgetUnusedMs ?? FORGET_UNUSED_MS;
    for (const [key, s] of this.agents) {
      if (s.users > 0 || now - s.unusedSince < after) continue;
      this.agents.delete(key);
      s.gone = true;
      s.link?.close();
      s.link = undefined;
      if (s.lastState !== 'closed') this.settle(-1);
    }
  }

  /**
   * Asks Info of those of `endpoints` whose capacity is not known yet (placement found them full
   * at the assumed one). Does not wait: the answer wakes the waiters (`waitForChange`).
   */
  learnCapacity(endpoints: readonly AgentEndpoint[]): void {
    for (const ep of endpoints) {
      const s = this.stateOf(ep);
      if (!s.info && s.breaker.allows(Date.now())) s.info = this.fetchInfo(s);
    }
  }

  /**
   * Asks the agent's capacity on the client its tasks use, so Info and Exec share a connection.
   * Only a transport failure counts against the breaker: any other refusal (the agent there is
   * not the one expected: IDENTITY_MISMATCH) is the task's error to report.
   */
  private async fetchInfo(s: AgentState): Promise<void> {
    try {
      const info = await this.linkOf(s).info();
      s.capacity = info.capacity > 0 ? info.capacity : (this.opts.defaultCapacity ?? 1);
      s.assumed = false;
      s.journal = info.journalId ?? '';
      this.succeeded(s);
      this.wake();
    } catch (e) {
      // Placement waits no longer for this answer (a task waiting to see whether the agent has
      // room goes elsewhere): the assumed capacity is taken as it is.
      s.assumed = false;
      this.wake();
      // Unreachable: asked again once the breaker lets calls through. Any other refusal is the
      // agent's answer: the assumed capacity stays, and Info is not asked again for it.
      if (isGaxxError(e) && !isTransportFailure(e.code)) return;
      s.info = undefined;
      this.failed(s);
    }
  }

  /**
   * The journal identity of the agent at `ep` as this worker last learned it (a Started, an
   * Info; '' for an agent that names none), undefined before. A task's dispatcher sends it in
   * its Exec, which only that agent then takes (AGENT_REPLACED otherwise), and so knows which
   * agent each Exec can have started on: going back to the address, it tells an agent that
   * restarted (same journal: it can say what became of the task) from one that replaced it.
   */
  knownJournal(ep: AgentEndpoint): string | undefined {
    return this.find(ep)?.journal;
  }

  /** What an Exec's Started said of the agent's journal (Started.journal_id). */
  learnJournal(ep: AgentEndpoint, journal: string): void {
    const s = this.find(ep);
    if (s && journal) s.journal = journal;
  }

  /** Agent `ep` refused an Exec meant for the journal known here (AGENT_REPLACED): learned anew from its next Started. */
  forgetJournal(ep: AgentEndpoint): void {
    const s = this.find(ep);
    if (s) s.journal = undefined;
  }

  /**
   * Asks agent `ep` its Info now, for its journal identity and since when (this process's clock,
   * at the latest) it runs: for a task whose Exec went there before its journal was known and
   * whose answer never came (rare: asked only then), which tells whether the agent there now is
   * the one that took the request. Rejects as Info does.
   */
  async askJournal(ep: AgentEndpoint): Promise<{ journal: string; upSince: number }> {
    const s = this.find(ep);
    if (!s) throw new Error(`agent ${agentKey(ep)} not in the pool`);
    const info = await this.linkOf(s).info();
    const upSince = Date.now() - Number(info.uptimeMs);
    s.journal = info.journalId ?? '';
    return { journal: s.journal, upSince };
  }

  /**
   * The client of agent `ep` (its address, pinning its expected fleet/host), reconnected after
   * its breaker opened. Tasks of different fleets never share a client, so a certificate checked
   * for one expectation is never trusted for another.
   */
  link(ep: AgentEndpoint): AgentLink {
    const s = this.find(ep);
    if (!s) throw new Error(`agent ${agentKey(ep)} not in the pool`);
    return this.linkOf(s);
  }

  private linkOf(s: AgentState): AgentLink {
    s.link ??= this.connect(s.endpoint);
    return s.link;
  }

  /** What placement needs to know about `endpoints`, by address (a task's one endpoint per address). */
  snapshot(endpoints: readonly AgentEndpoint[]): Map<string, AgentView> {
    const now = Date.now();
    const out = new Map<string, AgentView>();
    for (const ep of endpoints) {
      const s = this.find(ep);
      if (!s || out.has(ep.address)) continue;
      out.set(ep.address, {
        address: ep.address,
        breaker: s.breaker.state(now),
        reopensAt: s.breaker.reopensAt(),
        capacity: s.capacity,
        assumed: s.assumed,
        inflight: s.inflight,
        refusingUntil: s.refusal && s.refusal.until > now ? s.refusal.until : 0,
      });
    }
    return out;
  }

  /** Whether any call ever reached agent `ep` (else a wait on its breaker is counted as an attempt). */
  everReached(ep: AgentEndpoint): boolean {
    return this.find(ep)?.reached ?? false;
  }

  acquire(ep: AgentEndpoint): void {
    const s = this.find(ep);
    if (s) s.inflight += 1;
  }

  release(ep: AgentEndpoint): void {
    const s = this.find(ep);
    if (s) s.inflight = Math.max(0, s.inflight - 1);
    this.wake();
  }

  /** A call reached the agent (a task's Exec: it takes work again, if it refused before). */
  success(ep: AgentEndpoint): void {
    const s = this.find(ep);
    if (!s) return;
    s.refusal = undefined;
    this.succeeded(s);
  }

  /**
   * Agent `ep` refused a task because it cannot take work (its disk under its reserve, a rate
   * limit: not its slots being taken, which frees soon): no task of this worker is sent to it
   * before `until` (its retry hint), so that tasks that may run elsewhere do, and those pinned to
   * it wait without each asking it again. Said to `onRefused` every time (the log rate-limits it).
   */
  refused(ep: AgentEndpoint, refusal: AgentRefusal, until: number): void {
    const s = this.find(ep);
    if (!s || s.gone) return;
    s.refusal = { ...refusal, until: Math.max(until, s.refusal?.until ?? 0) };
    this.opts.onRefused?.(s.endpoint, refusal);
  }

  /** Why agent `ep` refuses new tasks, while it does (see `refused`). */
  refusal(ep: AgentEndpoint): AgentRefusal | undefined {
    const s = this.find(ep);
    return s?.refusal && s.refusal.until > Date.now()
      ? { kind: s.refusal.kind, message: s.refusal.message, ...(s.refusal.code ? { code: s.refusal.code } : {}) }
      : undefined;
  }

  /** A transport failure; an opening breaker drops the client so the probe reconnects. */
  failure(ep: AgentEndpoint): void {
    const s = this.find(ep);
    if (s) this.failed(s);
  }

  private succeeded(s: AgentState): void {
    s.reached = true;
    s.breaker.recordSuccess();
    this.noteState(s);
  }

  private failed(s: AgentState): void {
    if (s.gone) return;
    s.breaker.recordFailure(Date.now());
    if (s.breaker.state(Date.now()) !== 'closed') {
      s.link?.close();
      s.link = undefined;
      s.info = undefined;
    }
    this.noteState(s);
  }

  /** Resolves when a slot frees or a breaker changes, after `ms` at most, or on abort (at once when it came first). */
  waitForChange(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, Math.max(1, ms));
      signal?.addEventListener('abort', done, { once: true });
      this.waiters.push(done);
    });
  }

  /**
   * The known agents' breakers (metrics, the daemon's heartbeat, the dashboard); agents unused
   * past `forgetUnusedMs` are forgotten first, so what is published is what the pool still holds.
   */
  breakers(): AgentBreaker[] {
    const now = Date.now();
    this.forgetUnused(now);
    return [...this.agents.values()].map((s) => ({ agent: s.endpoint, state: s.breaker.state(now) }));
  }

  /** Breaker states by agentKey. */
  states(): Map<string, BreakerState> {
    return new Map(this.breakers().map((b) => [agentKey(b.agent), b.state]));
  }

  inflightTotal(): number {
    let n = 0;
    for (const s of this.agents.values()) n += s.inflight;
    return n;
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.unsettled = 0;
    for (const s of this.agents.values()) s.link?.close();
    this.agents.clear();
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private noteState(s: AgentState): void {
    if (s.gone) return;
    const st = s.breaker.state(Date.now());
    if (st !== s.lastState) {
      if ((s.lastState === 'closed') !== (st === 'closed')) this.settle(st === 'closed' ? -1 : 1);
      s.lastState = st;
      this.opts.onBreaker?.(s.endpoint, st);
      this.wake();
    }
  }

  /** Counts a breaker leaving (+1) or reaching (-1) closed; the probe timer runs while any is not. */
  private settle(delta: 1 | -1): void {
    this.unsettled += delta;
    if (this.unsettled > 0 && !this.timer) {
      this.timer = setInterval(() => this.probeOpen(), this.opts.probeIntervalMs ?? 200);
      this.timer.unref();
    } else if (this.unsettled === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private probeOpen(): void {
    const now = Date.now();
    this.forgetUnused(now);
    for (const s of this.agents.values()) {
      this.noteState(s);
      if (!s.breaker.takeProbe(now)) continue;
      void this.probe(s);
    }
  }

  /** A Health probe of the agent expected (its own identity pinned), then its Info. */
  private async probe(s: AgentState): Promise<void> {
    let ok = false;
    try {
      ok = (await this.linkOf(s).health()) === 'SERVING';
    } catch {
      ok = false;
    }
    // Forgotten meanwhile: its verdict concerns nobody.
    if (s.gone) return;
    if (!ok) {
      this.failed(s);
      return;
    }
    this.succeeded(s);
    s.info = this.fetchInfo(s);
  }
}
