/**
 * A full garbage collection on request, for the moment the agent has just dropped a large batch
 * of finished tasks (the registry's expiry sweep). An idle agent allocates nothing, so V8 would
 * not collect again for a long time and the dropped entries would stay resident. Node 20 offers
 * no API for this: V8's `gc` is exposed into a fresh context once, for this use only.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

/** Runs a full (mark-compact) collection; a no-op where the runtime refuses. */
export function collectGarbage(): void {
  try {
    if (!gc) {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    }
    gc();
  } catch {
    gc = () => undefined;
  }
}
