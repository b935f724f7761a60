/**
 * Placement: which agent runs a task, from the task's target and a snapshot of the agents. Pure
 * (no I/O, no clock of its own: the caller passes `now`), so every rule is unit-tested.
 *
 * - Pinned: that agent, when its breaker allows, it takes tasks and it has a free slot; else wait.
 * - Any host: the agent the task was already placed on, while that agent's breaker is not open
 *   and it did not refuse the task (a re-dispatch must reach the same agent to attach to or
 *   replay the earlier execution); otherwise the least-loaded allowed agent with a free slot
 *   (lowest inflight/capacity, then lowest inflight, then the seed), preferring agents this task
 *   has not failed on.
 * - An agent that refused the task (RESOURCE_EXHAUSTED: its slots are taken by others' tasks, or
 *   it cannot take work: a full disk, a rate limit) is skipped until it may take it (its retry
 *   hint): an any-host task goes to another agent with room meanwhile, and waits only when every
 *   agent it may use refuses it or is full.
 * - An agent whose capacity is only assumed (its Info has not answered) is weighed at the largest
 *   capacity known among the task's agents: the first agent whose Info answers does not take
 *   every task while the others are still counted full at the assumed one. When the least-loaded
 *   agent is full at its assumed capacity, the task waits for its Info rather than overfill others.
 */
import type { BreakerState } from './breaker.js';

/** One agent as placement sees it. */
export interface AgentView {
  address: string;
  breaker: BreakerState;
  /** When an open breaker will probe again (ms epoch), 0 otherwise. */
  reopensAt: number;
  capacity: number;
  inflight: number;
  /** The capacity is assumed: the agent's Info has not answered yet. */
  assumed?: boolean;
  /** Until when the agent refuses new tasks (it said it cannot take work), 0 or absent otherwise. */
  refusingUntil?: number;
}

export interface PlacementRequest {
  /** The pinned agent address, or undefined for any host. */
  pinned?: string;
  /** The addresses this task may use. */
  candidates: readonly string[];
  /** Where an earlier dispatch of this task went. */
  placedOn?: string;
  /** Agents this task already failed on (soft: used when nothing else is free). */
  failedOn?: ReadonlySet<string>;
  /** Agents that refused this task (RESOURCE_EXHAUSTED), each until when it is not asked again. */
  refusedBy?: ReadonlyMap<string, number>;
  /** The time refusals are compared with (ms epoch). */
  now?: number;
  /** Tie-breaker between equally loaded agents. */
  seed?: number;
}

export type Placement =
  | { kind: 'agent'; address: string }
  | { kind: 'wait'; reason: 'busy' | 'breaker-open' | 'refused'; until?: number }
  | { kind: 'none'; reason: 'unknown-agent' | 'no-agents' };

const free = (a: AgentView): boolean => a.inflight < a.capacity;

/** Until when `a` is not asked for this task (it or the pool's view of it refused), 0 when it may be. */
function refusedUntil(a: AgentView, req: PlacementRequest): number {
  const until = Math.max(a.refusingUntil ?? 0, req.refusedBy?.get(a.address) ?? 0);
  return until > (req.now ?? 0) ? until : 0;
}

/** Why nothing was placed: every agent open, every allowed one refusing, or full. */
function waitFor(agents: AgentView[], req: PlacementRequest): Placement {
  const closed = agents.filter((a) => a.breaker === 'closed');
  if (closed.length === 0) {
    const until = Math.min(...agents.map((a) => a.reopensAt || Infinity));
    return { kind: 'wait', reason: 'breaker-open', ...(Number.isFinite(until) ? { until } : {}) };
  }
  const refusing = closed.map((a) => refusedUntil(a, req));
  if (refusing.every((u) => u > 0)) return { kind: 'wait', reason: 'refused', until: Math.min(...refusing) };
  return { kind: 'wait', reason: 'busy' };
}

function leastLoaded(agents: AgentView[], seed: number, scale: number): AgentView | undefined {
  let best: AgentView[] = [];
  let bestKey: [number, number] = [Infinity, Infinity];
  for (const a of agents) {
    const capacity = a.assumed ? Math.max(a.capacity, scale) : a.capacity;
    const key: [number, number] = [a.inflight / Math.max(1, capacity), a.inflight];
    if (key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1])) {
      best = [a];
      bestKey = key;
    } else if (key[0] === bestKey[0] && key[1] === bestKey[1]) best.push(a);
  }
  return best.length ? best[Math.abs(Math.floor(seed)) % best.length] : undefined;
}

/** Chooses an agent for one task, or says to wait, or that it cannot be placed. */
export function place(req: PlacementRequest, snapshot: ReadonlyMap<string, AgentView>): Placement {
  if (req.pinned !== undefined) {
    const a = snapshot.get(req.pinned);
    if (!a) return { kind: 'none', reason: 'unknown-agent' };
    if (a.breaker !== 'closed') return waitFor([a], req);
    const until = refusedUntil(a, req);
    if (until > 0) return { kind: 'wait', reason: 'refused', until };
    return free(a) ? { kind: 'agent', address: a.address } : { kind: 'wait', reason: 'busy' };
  }
  const agents = req.candidates.map((c) => snapshot.get(c)).filter((a): a is AgentView => a !== undefined);
  if (agents.length === 0) return { kind: 'none', reason: 'no-agents' };
  const prev = req.placedOn !== undefined ? snapshot.get(req.placedOn) : undefined;
  if (prev && prev.breaker !== 'open' && !req.failedOn?.has(prev.address) && refusedUntil(prev, req) === 0) {
    return prev.breaker === 'closed' && free(prev) ? { kind: 'agent', address: prev.address } : { kind: 'wait', reason: 'busy' };
  }
  // An agent full at an assumed capacity may have room: it is weighed, and waited for when chosen.
  const usable = agents.filter((a) => a.breaker === 'closed' && refusedUntil(a, req) === 0 && (free(a) || a.assumed));
  const fresh = usable.filter((a) => !req.failedOn?.has(a.address));
  const scale = Math.max(0, ...agents.filter((a) => !a.assumed).map((a) => a.capacity));
  const pick = leastLoaded(fresh.length ? fresh : usable, req.seed ?? 0, scale);
  if (!pick) return waitFor(agents, req);
  return free(pick) ? { kind: 'agent', address: pick.address } : { kind: 'wait', reason: 'busy' };
}
