/**
 * What a command skipped of what it read from Redis: results that are not valid results of the
 * run's tasks, run records that are not valid records (see scheduler/queue/stored-result.ts).
 * Never fatal: they are counted, and reported once per run on stderr as a warning, when the
 * command ends (`flush`), however it ends.
 */
import { counted, printable } from '../../proto/index.js';
import type { Output } from '../output.js';

/** Counts skipped entries per run and warns about them once. */
export class IgnoredReport {
  private readonly runs = new Map<string, { count: number; why: string }>();

  constructor(
    private readonly out: Output,
    /** What was skipped: 'result' or 'record'. */
    private readonly what: 'result' | 'record',
  ) {}

  /** One skipped entry of run `runId` (the handler the scheduler calls). */
  readonly note = (runId: string, why: string): void => {
    const seen = this.runs.get(runId);
    if (seen) seen.count++;
    else this.runs.set(runId, { count: 1, why });
  };

  /** How many entries were skipped, over every run. */
  get total(): number {
    return [...this.runs.values()].reduce((n, r) => n + r.count, 0);
  }

  /** One warning line per run with skipped entries (then forgets them). */
  flush(): void {
    for (const [runId, { count, why }] of this.runs) {
      const skipped = this.what === 'record' ? 'its record is not valid; not listed' : `ignored ${counted(count, 'result')} not of its tasks or not valid`;
      this.out.note(`gaxx: warning: run ${printable(runId)}: ${skipped} (${count > 1 ? 'first: ' : ''}${printable(why)})`);
    }
    this.runs.clear();
  }
}
