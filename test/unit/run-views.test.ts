// A run's views (Views): one that throws is told once per kind and counted, never passed on, and
// the others still get every result; the summary and exit code say what was missed.
import { describe, expect, it } from 'vitest';
import { exitCodeFor, GaxxError } from '../../proto/index.js';
import { summarize, summaryExitCode, summaryText } from '../../cli/run/summary.js';
import { ResultsDirView } from '../../cli/run/results-dir.js';
import { JsonView, Views, type RunView } from '../../cli/run/views.js';
import { taskResult } from '../../scheduler/index.js';
import { capturedOutput, type CapturedOutput } from '../helpers/output.js';

const capture = (): CapturedOutput => capturedOutput(true);

const done = (taskId: string) => taskResult({ runId: 'r1', taskId, host: 'h1', outcome: 'succeeded', reason: '' }, { exitCode: 0, durationMs: 1 });

/** A --results view whose disk is full for tasks 2 to 4, with one other failure on task 5. */
class Failing implements RunView {
  readonly label = '--results';
  start(): void {}
  live(): void {}
  end(): void {}
  result(r: { taskId: string }): void {
    const full = Object.assign(new Error('no space'), { code: 'ENOSPC', errno: -28 });
    if (['2', '3', '4'].includes(r.taskId)) throw new GaxxError('FILE_ACCESS', `cannot write ${r.taskId}`, { details: { errno: 'ENOSPC' }, cause: full });
    if (r.taskId === '5') throw new GaxxError('FILE_ACCESS', 'cannot rename 5', { details: { errno: 'EIO' } });
  }
}

describe('Views', () => {
  it('a view that throws misses only its own results: told once per kind, counted, the run summary and exit code say so', () => {
    const { out, stdout, stderr } = capture();
    const v = new Views([new Failing(), new JsonView(out)], out);
    v.start({ runId: 'r1', argv: ['true'], fleet: 'f', mode: 'tasks' });
    for (const id of ['1', '2', '3', '4', '5', '6']) expect(() => v.result(done(id), [], false, id)).not.toThrow();
    expect(
      stdout()
        .split('\n')
        .filter((l) => l.includes('"type":"task"')),
    ).toHaveLength(6);
    // ENOSPC told once (task 2), EIO once (task 5).
    expect(stderr().match(/\[FILE_ACCESS\]/g)).toHaveLength(2);
    expect(v.missed()).toEqual({ resultsNotWritten: 4, resultsNotShown: 0 });
    const s = summarize('r1', { succeeded: 6 }, 10, [], { state: 'done', ...v.missed() });
    v.end(s);
    expect(JSON.parse(stdout().trim().split('\n').at(-1) as string)).toMatchObject({ type: 'summary', succeeded: 6, resultsNotWritten: 4 });
    expect(stderr()).toContain('gaxx runs wait r1 --json');
    expect(summaryExitCode(s, false)).toBe(exitCodeFor('FILE_ACCESS'));
    expect(summaryText(s)).toContain('4 not written to --results');
  });

  it('a --results view that missed results names the command that writes them, its DIR quoted for a shell', () => {
    for (const [dir, word] of [
      ['/tmp/res', '/tmp/res'],
      ["/tmp/it's here", "'/tmp/it'\\''s here'"],
    ] as const) {
      const { out, stderr } = capture();
      const v = new Views([new ResultsDirView(dir)], out);
      v.start({ runId: 'r1', argv: ['true'], fleet: 'f', mode: 'tasks' });
      v.result(done('1'), [], false, 'a', true);
      v.end(summarize('r1', { unknown: 1 }, 10, [], { state: 'running', ...v.missed() }));
      expect(stderr()).toContain(`gaxx runs wait r1 --results ${word} writes the missing folders`);
    }
  });

  it("the tasks' own exit code when every result was presented; a cancel or an early end keeps its code over folders not written", () => {
    expect(summaryExitCode(summarize('r', { succeeded: 2 }, 1, [], { state: 'done', resultsNotWritten: 0, resultsNotShown: 0 }), false)).toBe(0);
    expect(summaryExitCode(summarize('r', { failed: 2 }, 1, [], { state: 'done', resultsNotWritten: 1 }), false)).toBe(exitCodeFor('FILE_ACCESS'));
    expect(summaryExitCode(summarize('r', { cancelled: 2 }, 1, [], { state: 'cancelled', resultsNotWritten: 1 }), true)).toBe(exitCodeFor('CANCELLED'));
    expect(summaryExitCode(summarize('r', { succeeded: 1 }, 1, [], { state: 'done', resultsNotShown: 1 }), false)).toBe(exitCodeFor('INTERNAL'));
    expect(summarize('r', { succeeded: 1 }, 1, [], { state: 'done', resultsNotWritten: 0 })).not.toHaveProperty('resultsNotWritten');
  });
});
