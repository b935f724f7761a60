/** `gaxx runs show ID [--json]`: a run's record and its per-task results. */
import { counted, printable } from '../../proto/index.js';
import { OVER_BUDGET_ERROR, storedResults, type TaskResult } from '../../scheduler/index.js';
import { JSON_FLAG, type Command } from '../command.js';
import { renderTable } from '../output.js';
import { capNote } from '../run-printer.js';
import { IgnoredReport } from '../run/ignored.js';
import { runRecordJson } from '../result-json.js';
import { withRedis } from '../run/redis-session.js';
import { countsText, shownState } from './runs.js';

export const command: Command = {
  usage: 'gaxx runs show ID [--json]',
  description: [
    'Shows one run: its record (command, fleet, state, counts) and every task result stored so',
    "far: task, its record (a task list's input; `input` in --json), host, outcome, exit code,",
    'duration, attempts. Output bytes are not shown here (gaxx runs wait ID prints them). Unknown',
    'or expired run: exit 4.',
  ].join('\n'),
  flags: { json: JSON_FLAG },
  positionals: { names: ['ID'], min: 1 },
  examples: ['gaxx runs show rmx5i3k2abc123', 'gaxx runs show rmx5i3k2abc123 --json | jq \'.results[] | select(.outcome != "succeeded")\''],
  async run({ positionals, config, out }) {
    const runId = positionals[0] as string;
    const ignored = new IgnoredReport(out, 'result');
    const { record, results, inputs } = await withRedis(config, (settings) => storedResults(settings, runId, ignored.note)).finally(() => ignored.flush());
    const cut = results.filter((r) => r.truncated).length;
    // A task list's results each with its record, as its gaxx run --json gave them.
    const withInput: (TaskResult & { input?: string })[] = results.map((r, i) => (inputs[i] === undefined ? r : { ...r, input: inputs[i] }));
    const tasks = record.mode === 'tasks';
    out.result({ ...runRecordJson(record, shownState(record)), results: withInput }, () =>
      [
        `run ${printable(record.runId)}: ${shownState(record)}, ${results.length}/${record.total ?? `${record.enqueued}+`} tasks (${countsText(record)})`,
        `command: ${printable(record.argv.join(' '))}`,
        `fleet: ${printable(record.fleet) || counted(record.agents, 'agent')}; started ${new Date(record.startedAt).toISOString()}`,
        ...(record.state === 'failed' && record.failure ? [`failed: ${printable(record.failure.message)} [${record.failure.code}]`] : []),
        ...(cut > 0 ? [`${counted(cut, 'task')} with output cut`] : []),
        '',
        results.length === 0
          ? 'no results yet'
          : renderTable(withInput, [
              { header: 'TASK', get: (r) => r.taskId },
              ...(tasks ? [{ header: 'INPUT', get: (r: TaskResult & { input?: string }) => inputCell(r.input) }] : []),
              { header: 'HOST', get: (r) => r.host || '-' },
              { header: 'OUTCOME', get: (r) => r.outcome },
              { header: 'EXIT', get: (r) => (r.signal ? r.signal : r.exitCode === null ? '-' : String(r.exitCode)) },
              { header: 'MS', get: (r) => String(r.durationMs) },
              { header: 'ATTEMPTS', get: (r) => String(r.attempts) },
              // Output cut (its output cap, the run's output budget) or an error: said, not hidden.
              { header: 'NOTE', get: (r) => noteOf(r) },
            ]),
      ].join('\n'),
    );
    return 0;
  },
};

/** A task-list record in a table cell: printable (one line), at most INPUT_CELL characters. */
const INPUT_CELL = 40;
function inputCell(input: string | undefined): string {
  if (input === undefined) return '-';
  const p = printable(input);
  return p.length > INPUT_CELL ? `${p.slice(0, INPUT_CELL - 1)}…` : p;
}

/** What a task's row says beyond its outcome: why its output was cut, or its error (printable: read from Redis). */
function noteOf(r: TaskResult): string {
  const cut = capNote(r) || (r.truncated && !r.error?.includes(OVER_BUDGET_ERROR) ? 'output truncated' : '');
  return printable([cut, r.error ?? ''].filter(Boolean).join('; ')) || '-';
}
