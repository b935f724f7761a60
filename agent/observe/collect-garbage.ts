/**
 * Full garbage collections on request, for the moment the agent has just dropped a large batch
 * of finished tasks (the registry's expiry sweep). An idle agent allocates nothing, so V8 would
 * not collect again for a long time and the dropped entries would stay resident. Node 20 offers
 * no API for this: V8's `gc` is exposed into a fresh context once, for this use only.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AfterQuiet } from '../../proto/light.js';
import { releaseFreeHeap } from '../exec/task-spawn.js';

let gc: (() => void) | undefined;

/**
 * Collections after the first: the first frees what was dropped, but how many of the pages that
 * leaves empty V8 gives back at once depends on what its sweeper was doing; the next one gives
 * back the rest (and compacts half-empty pages). Measured with the agents' Node flags on a heap
 * grown to 76 MiB and dropped to 3: 9 to 50 MiB still committed after one collection, 7 after two.
 */
const MAX_ROUNDS = 4;

/**
 * Runs full (mark-compact) collections while the heap they leave keeps shrinking (at most
 * MAX_ROUNDS), then gives what glibc's heaps hold free back to the system (releaseFreeHeap:
 * Node's buffers and V8's own tables live there; measured on an agent after 4,000 tasks, 2 MiB,
 * and 1 MiB of its launcher's). V8's part is a no-op where the runtime refuses.
 */
export function collectGarbage(): void {
  collectV8();
  releaseFreeHeap();
}

function collectV8(): void {
  try {
    if (!gc) {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    }
    let total = Infinity;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      gc();
      const now = getHeapStatistics().total_heap_size;
      if (now >= total) break;
      total = now;
    }
  } catch {
    gc = () => undefined;
  }
}

/**
 * Collects once a burst is over, for a process that holds nothing between tasks (the task
 * launcher): after at least `minTasks` tasks since the last collection, once none has run for
 * `quietMs`. A process that waits allocates nothing, so V8 would not collect the heap the burst
 * grew for a long time.
 */
export class BurstCollector {
  private since = 0;
  private readonly quiet: AfterQuiet;

  constructor(
    private readonly minTasks: number,
    quietMs: number,
    private readonly collect: () => void = collectGarbage,
  ) {
    this.quiet = new AfterQuiet(quietMs, () => {
      if (this.since < this.minTasks) return;
      this.since = 0;
      this.collect();
    });
  }

  /** A task started: the quiet moment is not here yet. */
  started(): void {
    this.since += 1;
    this.quiet.started();
  }

  /** A task ended: with none left running, collect after `quietMs` without one, if the burst was large enough. */
  ended(): void {
    this.quiet.ended();
  }
}
