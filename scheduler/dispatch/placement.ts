/**
 * Placement: which agent runs a task, from the task's target and a snapshot of the agents. Pure
 * (no I/O, no clock of its own), so every rule is unit-tested.
 *
 * - Pinned: that agent, when its breaker allows and it has a free slot; else wait.
 * - Any host: the agent the task was already placed on, while that agent's breaker is not open
 *   (a re-dispatch must reach the same agent to attach to or replay the earlier execution);
 *   otherwise the least-loaded allowed agent with a free slot (lowest inflight/capacity, then
 *   lowest inflight, then the seed), preferring agents this task has not failed on.
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
  /** Tie-breaker between equally loaded agents. */
  seed?: number;
}

export type Placement =
  | { kind: 'agent'; address: string }
  | { kind: 'wait'; reason: 'busy' | 'breaker-open'; until?: number }
  | { kind: 'none'; reason: 'unknown-agent' | 'no-agents' };

const free = (a: AgentView): boolean => a.inflight < a.capacity;

function waitFor(agents: AgentView[]): Placement {
  const open = agents.filter((a) => a.breaker !== 'closed');
  if (open.length === agents.length) {
    const until = Math.min(...open.map((a) => a.reopensAt || Infinity));
    return { kind: 'wait', reason: 'breaker-open', ...(Number.isFinite(until) ? { until } : {}) };
  }
  return { kind: 'wait', reason: 'busy' };
}

function leastLoaded(agents: AgentView[], seed: number): AgentView | undefined {
  let best: AgentView[] = [];
  let bestKey: [number, number] = [Infinity, Infinity];
  for (const a of agents) {
    const key: [number, number] = [a.inflight / Math.max(1, a.capacity), a.inflight];
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
    if (a.breaker !== 'closed') return waitFor([a]);
    return free(a) ? { kind: 'agent', address: a.address } : { kind: 'wait', reason: 'busy' };
  }
  const agents = req.candidates.map((c) => snapshot.get(c)).filter((a): a is AgentView => a !== undefined);
  if (agents.length === 0) return { kind: 'none', reason: 'no-agents' };
  const prev = req.placedOn !== undefined ? snapshot.get(req.placedOn) : undefined;
  if (prev && prev.breaker !== 'open' && !req.failedOn?.has(prev.address)) {
    return prev.breaker === 'closed' && free(prev) ? { kind: 'agent', address: prev.address } : { kind: 'wait', reason: 'busy' };
  }
  const usable = agents.filter((a) => a.breaker === 'closed' && free(a));
  const fresh = usable.filter((a) => !req.failedOn?.has(a.address));
  const pick = leastLoaded(fresh.length ? fresh : usable, req.seed ?? 0);
  return pick ? { kind: 'agent', address: pick.address } : waitFor(agents);
}
