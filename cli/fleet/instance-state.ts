/**
 * Whether a host the state holds as ready still has a live instance, by what its provider
 * reports: the one rule `gaxx spawn --fill` (which replaces such hosts) and `gaxx ls` (which
 * shows them) share.
 */
import type { Instance } from '../providers/index.js';

/** What became of a ready host's instance: 'stopped', 'deleting' or 'gone'; undefined while it runs (or is still starting). */
export function deadInstanceState(inst: Instance | undefined): 'stopped' | 'deleting' | 'gone' | undefined {
  if (!inst) return 'gone';
  return inst.status === 'stopped' || inst.status === 'deleting' ? inst.status : undefined;
}
