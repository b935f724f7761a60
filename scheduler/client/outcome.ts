/** How an agent's Exit reads as a task outcome: the one rule for queued and direct tasks. */
import { lostReason, type Exit__Output } from '../../proto/index.js';

/**
 * The outcomes an Exit event can stand for (the queue adds its own, e.g. unreachable). `unknown`:
 * the agent restarted while the task ran (its journal says so): started, outcome lost.
 */
export type ExitOutcome = 'succeeded' | 'failed' | 'timeout' | 'cancelled' | 'killed' | 'unknown';

/** The outcome an agent's Exit event stands for. */
export function outcomeOf(exit: Exit__Output): ExitOutcome {
  if (exit.reason === 'timeout') return 'timeout';
  if (lostReason(exit.reason)) return 'unknown';
  if (exit.reason === 'cancelled') return 'cancelled';
  // The agent stops a task at its output cap: killed, whether its SIGTERM or the task's own end
  // came first (the same command was 'killed' one time and 'succeeded' the next).
  if (exit.reason === 'output_cap') return 'killed';
  if (exit.signal) return 'killed';
  return exit.code === 0 && !exit.error ? 'succeeded' : 'failed';
}
