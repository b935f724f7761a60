/** `gaxx runs cancel ID`: cancel a run from any process. */
import { counted, exitCodeFor, GaxxError } from '../../proto/index.js';
import { agentConnector, attachRun, cancelRecordedRun, type Attached } from '../../scheduler/index.js';
import { durationFlag, JSON_FLAG, type Command } from '../command.js';
import { agentClientOptions } from '../config.js';
import { withRedis } from '../run/redis-session.js';
import { endedState } from '../run/summary.js';
import { schedulerCredentialSource } from '../scheduler-credentials.js';
import { countsText } from './runs.js';

export const command: Command = {
  usage: 'gaxx runs cancel ID [--wait [--wait-timeout D]] [--json]',
  description: [
    'Cancels a run: its queued tasks are withdrawn (reported cancelled), its running tasks are',
    'stopped on their agents by the workers serving them (a `gaxx scheduler`, its `gaxx run`; when',
    'neither runs, `gaxx runs wait ID` or --wait serves it), and its `gaxx run`, if still alive,',
    'stops reading input and exits 130. A task that ended before the cancel reached it keeps its',
    'real result. A run whose tasks all have their results (done, or interrupted: its input was',
    'never all read) is left as it is (exit 0, saying so; --json: its state), even when its gaxx',
    'run died before recording its end; one cancelled before is said to be (--json:',
    'alreadyCancelled), and what is still queued of it is withdrawn. Unknown or expired run: exit 4.',
    'With --wait it returns once every task of the run has its result (its running ones stopped),',
    'serving the run itself when nothing else does (its gaxx run died and no gaxx scheduler runs:',
    "the tasks that were running come back once their worker's 30 s lock has expired) and saying",
    'how its tasks ended (--json: ended). Past --wait-timeout it exits 13, the cancel standing;',
    'a run Redis lost meanwhile ends the wait with exit 12 (--json: ended.state lost).',
  ].join('\n'),
  flags: {
    wait: { type: 'boolean', help: "return once the run's running tasks are stopped (serving the run when nothing else does)" },
    'wait-timeout': { type: 'string', valueName: 'D', help: 'with --wait: give up waiting after D, e.g. 2m (exit 13; the cancel stands)' },
    json: JSON_FLAG,
  },
  positionals: { names: ['ID'], min: 1 },
  examples: ['gaxx runs cancel rmx5i3k2abc123', 'gaxx runs cancel rmx5i3k2abc123 --wait --wait-timeout 2m'],
  async run({ flags, positionals, config, out }) {
    const runId = positionals[0] as string;
    const waitMs = durationFlag(flags, 'wait-timeout', 'runs cancel');
    if (waitMs !== undefined && flags.wait !== true) throw new GaxxError('USAGE', 'runs cancel: --wait-timeout goes with --wait');
    const { record, withdrawn, finished, alreadyCancelled } = await withRedis(config, (settings) => cancelRecordedRun(settings, runId));
    const what = alreadyCancelled
      ? `was already cancelled; ${counted(withdrawn, 'queued task')} withdrawn now`
      : `cancel requested; ${counted(withdrawn, 'queued task')} withdrawn`;
    const ended = flags.wait === true && !finished ? await waitForEnd(runId, waitMs, config, (text) => out.note(`gaxx: ${text}`)) : undefined;
    out.result(
      {
        runId,
        cancelled: !finished,
        withdrawn,
        ...(alreadyCancelled ? { alreadyCancelled } : {}),
        ...(finished ? { state: record.state } : {}),
        // A wait that ended early leaves the run running, or lost with Redis's data (as a run's summary says it).
        ...(ended
          ? {
              ended: {
                state: ended.ended ? endedState(ended.ended) : ended.state,
                counts: ended.counts,
                ...(ended.ended ? { waitEnded: ended.ended.code } : {}),
              },
            }
          : {}),
      },
      () =>
        finished
          ? `run ${runId} is already ${record.state}: every task has its result; nothing to cancel`
          : ended
            ? `run ${runId} ${what}; ${ended.ended ? `${ended.ended.message}: its running tasks may not be stopped yet (so far: ${countsText({ ...ended.record, counts: ended.counts })})` : `every task has its result now (${countsText({ ...ended.record, counts: ended.counts })})`}`
            : `run ${runId} ${what}; running ones are stopped by the worker serving the run (a gaxx scheduler, its gaxx run, or gaxx runs wait ${runId} when neither runs)`,
    );
    return ended?.ended ? exitCodeFor(ended.ended.code) : 0;
  },
};

/**
 * Follows run `runId` until every task has its result, serving it (a worker here) when no gaxx
 * scheduler runs, as `gaxx runs wait` does; its results are not printed, only counted.
 */
async function waitForEnd(
  runId: string,
  waitMs: number | undefined,
  config: Parameters<Command['run']>[0]['config'],
  note: (text: string) => void,
): Promise<Attached> {
  // Said once the wait lasts: a run whose tasks all have their results already ends it at once.
  const lasting = setTimeout(() => note(`waiting for run ${runId}'s running tasks to stop${waitMs ? '' : ' (--wait-timeout bounds the wait)'}`), WAIT_NOTE_MS);
  try {
    const creds = await schedulerCredentialSource(config.paths, { note, error: note });
    return await withRedis(config, (settings) =>
      attachRun(runId, { settings, connect: agentConnector(creds, agentClientOptions(config)), ...(waitMs ? { timeoutMs: waitMs } : {}) }),
    );
  } finally {
    clearTimeout(lasting);
  }
}

/** How long `--wait` goes before it says it waits. */
const WAIT_NOTE_MS = 1000;
