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
  // The agent stopped it at its output cap (its signal reached the running task: killed, even if
  // the task caught it and exited 0). A task that ended on its own first has no reason and its
  // own outcome; its output is cut all the same (exit.outputCapped).
  if (exit.reason === 'output_cap') return 'killed';
  if (exit.signal) return 'killed';
  return exit.code === 0 && !exit.error ? 'succeeded' : 'failed';
}

/**
 * The bytes of `stream` (1 stdout, 2 stderr) in a task's output chunks: what a result whose exit
 * never came counts as its output (the agent's own counts came with the exit).
 */
export const outputBytes = (output: readonly { stream: 1 | 2; data: Buffer }[], stream: 1 | 2): number =>
  output.reduce((n, c) => (c.stream === stream ? n + c.data.length : n), 0);
