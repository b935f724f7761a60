/**
 * The worker's view of the agents it dispatches to: one client per identity expectation, and a
 * breaker, capacity (from Info, asked only once an agent is full at the assumed capacity) and
 * in-flight count per agent address. Open breakers are probed through the Health service
 * with a fresh connection (an old grpc-js channel may sit in its reconnect backoff long after
 * the agent came back). Waiters are woken whenever a slot frees or a breaker changes. The probe
 * timer runs only while some breaker is open or half-open: a closed breaker changes only with a
 * call's outcome, and a worker with every agent well (a daemon waiting for work) is not woken
 * five times a second for nothing.
 */
import { isGaxxError, type ExecEvent__Output, type ExecRequest, type InfoResponse__Output } from '../../proto/index.js';
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

export interface AgentPoolOptions {
  breaker?: BreakerOptions;
  /** Slots assumed until Info answers, and when it reports none. */
  defaultCapacity?: number;
  /** How often open breakers are checked for a probe. */
  probeIntervalMs?: number;
  /** Called whenever a breaker changes state (metrics, logs). */
  onBreaker?: (address: string, state: BreakerState) => void;
}

interface AgentState {
  address: string;
  /** One client per identity expectation: a task only ever talks to the agent it expects. */
  links: Map<string, AgentLink>;
  breaker: Breaker;
  capacity: number;
  inflight: number;
  /** Info asked (in flight or answered); reset when the breaker opens, so it is asked again. */
  info: Promise<void> | undefined;
  /**
   * The identity health probes and their Info ask for: that of the last Info that answered, so
   * they share the connection its tasks use instead of opening one of their own.
   */
  expect: AgentEndpoint['expect'];
  lastState: BreakerState;
  /** Some call reached this agent since the pool knows it (a restart is then worth waiting for). */
  reached: boolean;
}

/** Agents by address, shared by every job a worker runs. */
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
   * Makes the agents known (idempotent; no call is made). Each starts with the assumed capacity:
   * a task placed on an idle agent never waits for Info, and Info is asked only when placement
   * finds an agent full at what is assumed (`learnCapacity`), so a run of one task per host
   * costs each agent one call, its Exec.
   */
  ensure(endpoints: AgentEndpoint[]): void {
    for (const ep of endpoints) {
      if (this.agents.has(ep.address)) continue;
      this.agents.set(ep.address, {
        address: ep.address,
        links: new Map(),
        breaker: new Breaker(this.opts.breaker ?? DEFAULT_BREAKER),
        capacity: this.opts.defaultCapacity ?? 1,
        inflight: 0,
        info: undefined,
        expect: ep.expect,
        lastState: 'closed',
        reached: false,
      });
    }
  }

  /**
   * Asks Info of those of `endpoints` whose capacity is not known yet (placement found them full
   * at the assumed one). Does not wait: the answer wakes the waiters (`waitForChange`).
   */
  learnCapacity(endpoints: AgentEndpoint[]): void {
    this.ensure(endpoints);
    for (const ep of endpoints) {
      const s = this.agents.get(ep.address) as AgentState;
      if (!s.info && s.breaker.allows(Date.now())) s.info = this.fetchInfo(s, ep.expect);
    }
  }

  /**
   * Asks the agent's capacity on the client its tasks use (the one pinning `expect`), so Info
   * and Exec share a connection. Only a transport failure counts against the breaker: an agent
   * that is not the one expected (IDENTITY_MISMATCH) is the task's error to report, and must not
   * hold up the tasks of another expectation that it does satisfy.
   */
  private async fetchInfo(s: AgentState, expect: AgentEndpoint['expect']): Promise<void> {
    try {
      const info = await this.link(s.address, expect).info();
      s.capacity = info.capacity > 0 ? info.capacity : (this.opts.defaultCapacity ?? 1);
      s.expect = expect;
      this.success(s.address);
      this.wake();
    } catch (e) {
      // Unreachable: asked again once the breaker lets calls through. Any other refusal is the
      // agent's answer: the assumed capacity stays, and Info is not asked again for it.
      if (isGaxxError(e) && !isTransportFailure(e.code)) return;
      s.info = undefined;
      this.failure(s.address);
    }
  }

  /**
   * The client for `address` that pins `expect` (fleet/host), reconnected after the agent's
   * breaker opened. Tasks of different fleets never share a client, so a certificate checked for
   * one expectation is never trusted for another.
   */
  link(address: string, expect?: AgentEndpoint['expect']): AgentLink {
    const st = this.agents.get(address);
    if (!st) throw new Error(`agent ${address} not in the pool`);
    const key = identityKey(expect);
    let l = st.links.get(key);
    if (!l) {
      l = this.connect({ address, ...(expect ? { expect } : {}) });
      st.links.set(key, l);
    }
    return l;
  }

  /** What placement needs to know about `addresses`. */
  snapshot(addresses: readonly string[]): Map<string, AgentView> {
    const now = Date.now();
    const out = new Map<string, AgentView>();
    for (const a of addresses) {
      const s = this.agents.get(a);
      if (!s) continue;
      out.set(a, { address: a, breaker: s.breaker.state(now), reopensAt: s.breaker.reopensAt(), capacity: s.capacity, inflight: s.inflight });
    }
    return out;
  }

  /** Whether any call ever reached `address` (else a wait on its breaker is counted as an attempt). */
  everReached(address: string): boolean {
    return this.agents.get(address)?.reached ?? false;
  }

  acquire(address: string): void {
    const s = this.agents.get(address);
    if (s) s.inflight += 1;
  }

  release(address: string): void {
    const s = this.agents.get(address);
    if (s) s.inflight = Math.max(0, s.inflight - 1);
    this.wake();
  }

  /** A call reached the agent. */
  success(address: string): void {
    const s = this.agents.get(address);
    if (!s) return;
    s.reached = true;
    s.breaker.recordSuccess();
    this.noteState(s);
  }

  /** A transport failure; an opening breaker drops the client so the probe reconnects. */
  failure(address: string): void {
    const s = this.agents.get(address);
    if (!s) return;
    s.breaker.recordFailure(Date.now());
    if (s.breaker.state(Date.now()) !== 'closed') {
      for (const l of s.links.values()) l.close();
      s.links.clear();
      s.info = undefined;
    }
    this.noteState(s);
  }

  /** Resolves when a slot frees or a breaker changes, after `ms` at most, or on abort. */
  waitForChange(ms: number, signal?: AbortSignal): Promise<void> {
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

  /** Breaker states by address, for metrics. */
  states(): Map<string, BreakerState> {
    const now = Date.now();
    return new Map([...this.agents].map(([a, s]) => [a, s.breaker.state(now)]));
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
    for (const s of this.agents.values()) for (const l of s.links.values()) l.close();
    this.agents.clear();
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private noteState(s: AgentState): void {
    const st = s.breaker.state(Date.now());
    if (st !== s.lastState) {
      if ((s.lastState === 'closed') !== (st === 'closed')) this.settle(st === 'closed' ? -1 : 1);
      s.lastState = st;
      this.opts.onBreaker?.(s.address, st);
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
    for (const s of this.agents.values()) {
      this.noteState(s);
      if (!s.breaker.takeProbe(now)) continue;
      void this.probe(s);
    }
  }

  private async probe(s: AgentState): Promise<void> {
    let ok = false;
    try {
      ok = (await this.link(s.address, s.expect).health()) === 'SERVING';
    } catch {
      ok = false;
    }
    if (!ok) {
      this.failure(s.address);
      return;
    }
    this.success(s.address);
    s.info = this.fetchInfo(s, s.expect);
  }
}
