/** `gaxx runs cancel ID`: cancel a run from any process. */
import { counted } from '../../proto/index.js';
import { cancelRecordedRun } from '../../scheduler/index.js';
import { JSON_FLAG, type Command } from '../command.js';
import { withRedis } from '../run/redis-session.js';

export const command: Command = {
  usage: 'gaxx runs cancel ID [--json]',
  description: [
    'Cancels a run: its queued tasks are withdrawn (reported cancelled), its running tasks are',
    'stopped on their agents by the workers serving them (a `gaxx scheduler`, its `gaxx run`; when',
    'neither runs, `gaxx runs wait ID` serves it), and its `gaxx run`, if still alive, stops reading',
    'input and exits 130. A task that ended before the cancel reached it keeps its real result. A',
    'run whose tasks all have their results (done, or interrupted: its input was never all read) is left',
    'as it is (exit 0, saying so; --json: its state), even when its gaxx run died before recording its',
    'end; one cancelled before is said to be',
    '(--json: alreadyCancelled), and what is still queued of it is withdrawn. Unknown or expired run: exit 4.',
  ].join('\n'),
  flags: { json: JSON_FLAG },
  positionals: { names: ['ID'], min: 1 },
  examples: ['gaxx runs cancel rmx5i3k2abc123'],
  async run({ positionals, config, out }) {
    const runId = positionals[0] as string;
    const { record, withdrawn, finished, alreadyCancelled } = await withRedis(config, (settings) => cancelRecordedRun(settings, runId));
    const what = alreadyCancelled
      ? `was already cancelled; ${counted(withdrawn, 'queued task')} withdrawn now`
      : `cancel requested; ${counted(withdrawn, 'queued task')} withdrawn`;
    out.result(
      { runId, cancelled: !finished, withdrawn, ...(alreadyCancelled ? { alreadyCancelled } : {}), ...(finished ? { state: record.state } : {}) },
      () =>
        finished
          ? `run ${runId} is already ${record.state}: every task has its result; nothing to cancel`
          : `run ${runId} ${what}; running ones are stopped by the worker serving the run (a gaxx scheduler, its gaxx run, or gaxx runs wait ${runId} when neither runs)`,
    );
    return 0;
  },
};
