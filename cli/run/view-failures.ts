/**
 * What a run's views could not do. A view that fails (a `--results` disk that is full, output
 * that cannot be written) changes neither a task's outcome nor the run: the run goes on (every
 * result is in Redis), the failure is told on stderr the first time of its kind (the view and
 * the cause, e.g. FILE_ACCESS for ENOSPC, naming the path and the fix), each task whose result the
 * view missed is counted, and the run's summary says how many and how to get them.
 */
import { GaxxError } from '../../proto/index.js';

/** Which views a run has: `--results` (files), `output` (stdout and stderr, human or JSON). */
export type ViewLabel = '--results' | 'output';

/** How many of a view's missed tasks are named in the closing note. */
const NAMED = 10;

const MISSED: Record<ViewLabel, string> = {
  '--results': 'result folders were not written',
  output: 'results were not shown',
};

/** A failure's kind: its view, code and errno (each told once). */
function kindOf(label: ViewLabel, e: unknown): string {
  if (e instanceof GaxxError) return `${label} ${e.code} ${String(e.details?.errno ?? '')}`;
  return `${label} ${e instanceof Error ? `${e.name} ${String((e as NodeJS.ErrnoException).code ?? '')}` : 'thrown'}`;
}

/** The failures of one run's views (Views). */
export class ViewFailures {
  private readonly told = new Set<string>();
  private readonly missed = new Map<ViewLabel, { n: number; ids: string[] }>();

  constructor(readonly note: (text: string) => void) {}

  /** `label`'s view failed; `taskId`: on that task's result (which it then missed). */
  failed(label: ViewLabel, taskId: string | undefined, e: unknown): void {
    if (taskId !== undefined) {
      const m = this.missed.get(label) ?? { n: 0, ids: [] };
      m.n++;
      if (m.ids.length < NAMED) m.ids.push(taskId);
      this.missed.set(label, m);
    }
    const kind = kindOf(label, e);
    if (this.told.has(kind)) return;
    this.told.add(kind);
    const task = taskId === undefined ? '' : ` task ${taskId}:`;
    const text = e instanceof GaxxError ? `${e.message} [${e.code}]` : `${e instanceof Error ? e.message : String(e)} [INTERNAL]`;
    this.note(`gaxx: ${label}:${task} ${text}; the run goes on (more failures like this one are counted, not shown)`);
  }

  /** How many tasks' results `label`'s view missed. */
  count(label: ViewLabel): number {
    return this.missed.get(label)?.n ?? 0;
  }

  /** Per view that missed results: how many, the first few tasks, and how to get them all (`fixes`: a view's own way, e.g. the command that writes the missing folders). */
  closing(runId: string, fixes: ReadonlyMap<ViewLabel, string> = new Map()): string[] {
    return [...this.missed].map(([label, { n, ids }]) => {
      const more = n > ids.length ? `, and ${n - ids.length} more` : '';
      const fix = fixes.get(label);
      return (
        `gaxx: ${label}: ${n === 1 ? "1 task's" : `${n} tasks'`} ${MISSED[label]} (tasks ${ids.join(', ')}${more}); ` +
        `their results are kept in Redis for a day: gaxx runs wait ${runId} --json prints every one, gaxx runs show ${runId} lists them` +
        (fix ? `, ${fix}` : '')
      );
    });
  }
}
