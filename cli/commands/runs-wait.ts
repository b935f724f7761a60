/** `gaxx runs wait ID [--results DIR] [--json]`: attach to a run and print its results as `gaxx run` would (and write its `--results` folders). */
import { counted } from '../../proto/index.js';
import { agentConnector, attachRun } from '../../scheduler/index.js';
import { durationFlag, JSON_FLAG, stringFlag, usageError, type Command } from '../command.js';
import { agentClientOptions } from '../config.js';
import { withRedis } from '../run/redis-session.js';
import { cancelledNote, endedState, failedNote, INTERRUPTED, noteUnreachable, summarize, summaryExitCode } from '../run/summary.js';
import { IgnoredReport } from '../run/ignored.js';
import { endedNote } from '../run/run-shared.js';
import { recordedRunView, type Views } from '../run/views.js';
import { RecordedRun } from '../run/recorded-run.js';
import { schedulerCredentialSource } from '../scheduler-credentials.js';

export const command: Command = {
  usage: 'gaxx runs wait ID [--results DIR] [--wait-timeout D] [--json]',
  description: [
    "Attaches to a run started elsewhere, or whose `gaxx run` died, and prints every task's",
    'result from the start, as `gaxx run` does (--json: the run first, one object per task, a',
    "summary last), then exits with the run's exit code (0, 1, 3, 12 or 130, see gaxx run --help).",
    'Tasks already queued keep running: a `gaxx scheduler` takes them, or, when none runs, this',
    'process does, as `gaxx run --resume` would (tasks of a dead worker come back once their 30 s',
    'lock expired, within seconds after). A run whose `gaxx run` died before enqueueing all its',
    'input ends as interrupted, with the results of what was enqueued, and exits 12 (those records',
    'never ran). A cancelled run stays cancelled (exit 130); a failed one (its task list could not',
    'be read to its end) stays failed, with its reason, and exits as its gaxx run did (3).',
    'Unknown or expired run: exit 4. A run Redis lost meanwhile (flushed, restarted without its',
    'data): each task it knew of without a result unknown (REDIS_DATA_LOST), the state lost, exit 12.',
    'Past --wait-timeout, each task without a result is reported unknown, the summary says the',
    'run is still running, and it exits 13: the run goes on, and another `runs wait` collects it.',
    "--results DIR writes the run's results folders as its own `gaxx run --results` does (see gaxx",
    'run --help: the same names, files and bytes, each folder whole or not at all) into a new or empty',
    "DIR, or completes the DIR that run's --results left incomplete (its gaxx run killed, its wait",
    'ended early, a full disk): the folders there are kept as they are, only the missing ones are',
    'written, and a leftover .gaxx-*.tmp of a killed writer is removed. A DIR holding anything else',
    "(another run's folders: each result.json names its run; other files) is refused, exit 5, and a",
    'run whose task records (or hosts) expired, 24 hours after it, too, exit 4: nothing is written.',
    'Folders that cannot be written are counted and said as gaxx run says them, exit 3. A DIR',
    'another live gaxx writes into (its gaxx run still running, another completion) is refused, exit',
    '6, naming its pid: nothing is read or written.',
  ].join('\n'),
  flags: {
    results: {
      type: 'string',
      valueName: 'DIR',
      help: "write the run's --results folders into DIR (new or empty, or that run's own --results DIR: the missing ones)",
    },
    'wait-timeout': { type: 'string', valueName: 'D', help: 'give up after D, e.g. 10m (exit 13)' },
    json: { ...JSON_FLAG, help: 'print JSON Lines: the run first, one object per task, a summary last' },
  },
  positionals: { names: ['ID'], min: 1 },
  examples: ['gaxx runs wait rmx5i3k2abc123', 'gaxx runs wait rmx5i3k2abc123 --json > results.jsonl', 'gaxx runs wait rmx5i3k2abc123 --results out'],
  async run({ flags, positionals, config, out, io }) {
    const runId = positionals[0] as string;
    const waitMs = durationFlag(flags, 'wait-timeout', 'runs wait');
    const resultsDir = stringFlag(flags, 'results');
    if (resultsDir === '') throw usageError('runs wait', '--results needs a directory');
    const note = (text: string): void => out.note(`gaxx: ${text}`);
    const creds = await schedulerCredentialSource(config.paths, { note, error: note });
    // Made once the run is known: a run of one task per host is printed as its `gaxx run` prints
    // it (output lines and a result line per host), a task list as task lists are (each result
    // with its record, a fleet's output labelled with its host names).
    let view: Views | undefined;
    const down = new Set<string>();
    const ignored = new IgnoredReport(out, 'result');
    let outputCut = 0;
    const res = await withRedis(config, async (settings) => {
      const recorded = await RecordedRun.open(settings, runId, out, io.colour === true, resultsDir);
      try {
        const attached = await attachRun(runId, {
          settings,
          redis: recorded.redis,
          connect: agentConnector(creds, agentClientOptions(config)),
          ...(waitMs ? { timeoutMs: waitMs } : {}),
          onStart: (rec, hosts) => (view = recorded.start(rec, hosts)),
          onIgnored: ignored.note,
          onNote: (_id, text) => out.note(`gaxx: ${text}`),
          paced: () => out.drained(),
          onLive: (taskId, chunk) => view?.live(taskId, chunk),
          onResult: (r, o, shown, pending) => {
            if (r.truncated) outputCut++;
            noteUnreachable(down, r);
            recorded.result(r, o, shown, pending);
          },
        });
        await recorded.shown();
        return attached;
      } finally {
        recorded.close();
      }
    }).finally(() => ignored.flush());
    // A failed run (its task list could not be read to its end): why, as its record keeps it.
    const failure = res.state === 'failed' && !res.ended ? res.record.failure : undefined;
    // A task list that ended before its input was all read (interrupted, cancelled, failed): where its unread records begin.
    const unread =
      (res.state === 'interrupted' || res.state === 'cancelled' || failure) && res.record.total === null ? { notEnqueuedFrom: res.record.enqueued + 1 } : {};
    // The run's own duration (from its start to its end, or to now while it runs), not this wait's.
    const durationMs = (res.record.finishedAt ?? Date.now()) - res.record.startedAt;
    const summary = summarize(runId, res.counts, durationMs, down, {
      state: res.ended ? endedState(res.ended) : res.state,
      ...unread,
      failure,
      outputCut,
      ...view?.missed(),
    });
    (view ?? recordedRunView(out, io.colour === true)).end(summary);
    if (res.ended) out.note(endedNote(res.ended, runId, config));
    else if (failure) out.note(failedNote(runId, failure, unread.notEnqueuedFrom));
    else if (res.state === 'cancelled') out.note(cancelledNote(runId, unread.notEnqueuedFrom));
    else if (res.state === 'interrupted')
      out.note(
        `gaxx: run ${runId} was interrupted: its gaxx run ended before enqueueing all its input (it died, or gave up waiting: --wait-timeout); ${counted(summary.total, 'task')} ran, records from ${res.record.enqueued + 1} on never did`,
      );
    return summaryExitCode(summary, res.state === 'cancelled', res.ended ?? (res.state === 'interrupted' ? INTERRUPTED : undefined));
  },
};
