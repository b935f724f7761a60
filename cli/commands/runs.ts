/** `gaxx runs [--json]`: the recent runs from the run index. */
import { counted } from '../../proto/index.js';
import { listRunRecords, RESULT_TTL_MS, RUN_INDEX_TTL_MS, settleRunRecord, submitterAlive, type RunRecord } from '../../scheduler/index.js';
import { intFlag, JSON_FLAG, type Command } from '../command.js';
import { renderTable } from '../output.js';
import { IgnoredReport } from '../run/ignored.js';
import { runRecordJson } from '../result-json.js';
import { withReadyRedis } from '../run/redis-session.js';

/** The most runs one listing shows. */
const MAX_LIMIT = 100_000;

/** `succeeded 3, failed 1`, in a fixed order. */
export function countsText(r: RunRecord): string {
  const order = ['succeeded', 'failed', 'timeout', 'killed', 'unreachable', 'unknown', 'error', 'cancelled', 'refused'] as const;
  const parts = order.filter((o) => (r.counts[o] ?? 0) > 0).map((o) => `${o} ${r.counts[o]}`);
  return parts.length ? parts.join(', ') : '-';
}

/**
 * The state to show: a running run whose submitter stopped heartbeating (its `gaxx run` died,
 * whether before the end of its input or after) is shown as such, not as running for good.
 */
export function shownState(r: RunRecord, now = Date.now()): string {
  if (r.state === 'running' && !submitterAlive(r, now)) return 'submitter-gone';
  return r.state;
}

export const command: Command = {
  usage: 'gaxx runs [--limit N] [--json]',
  description: [
    'Lists recent runs, newest first: id, state, command, fleet, tasks (done/total; N/M+ while its',
    'input is still being read: M enqueued so far), counts by outcome (once the run ended) and',
    'start time; --json gives a running run its results so far as done. States: running, done,',
    'cancelled, interrupted (its `gaxx run` died before enqueueing all its input), submitter-gone',
    '(its `gaxx run` died, or stopped waiting, nobody else waits for it, and some of its tasks are',
    'still without a result: `gaxx runs wait ID` serves and collects them), failed (its task list',
    'could not be read to its end: --json and `gaxx runs show ID` give why, as failure). A run whose',
    '`gaxx run` is gone and whose tasks all have results is shown as it ended (done, cancelled or',
    'interrupted) even when nobody waited for it.',
    `Runs are listed for ${RUN_INDEX_TTL_MS / 86_400_000} days; their per-task results and output are kept`,
    `for ${RESULT_TTL_MS / 3_600_000} hours (gaxx runs show / wait). See also gaxx runs show|wait|cancel ID.`,
  ].join('\n'),
  flags: { limit: { type: 'string', valueName: 'N', help: `how many runs, 1 to ${MAX_LIMIT} (default 20)` }, json: JSON_FLAG },
  examples: ['gaxx runs', "gaxx runs --json | jq '.[0].runId'"],
  async run({ flags, config, out }) {
    const limit = intFlag(flags, 'limit', 'runs', 1, MAX_LIMIT) ?? 20;
    // A record in Redis that is not valid is left out (and warned about), never fails the listing.
    const ignored = new IgnoredReport(out, 'record');
    // A run nobody followed to its end (its gaxx run killed) is shown as it ended.
    const runs = await withReadyRedis(config, async (redis) =>
      Promise.all((await listRunRecords(redis, limit, ignored.note)).map((r) => settleRunRecord(redis, r))),
    ).finally(() => ignored.flush());
    out.result(
      runs.map((r) => runRecordJson(r, shownState(r))),
      () =>
        runs.length === 0
          ? 'no runs yet'
          : renderTable(runs, [
              { header: 'RUN', get: (r) => r.runId },
              { header: 'STATE', get: (r) => shownState(r) },
              { header: 'STARTED', get: (r) => new Date(r.startedAt).toISOString().replace(/\.\d+Z$/, 'Z') },
              { header: 'FLEET', get: (r) => r.fleet || counted(r.agents, 'agent') },
              { header: 'TASKS', get: (r) => `${r.done ?? Object.values(r.counts).reduce((n, v) => n + (v ?? 0), 0)}/${r.total ?? `${r.enqueued}+`}` },
              { header: 'OUTCOMES', get: (r) => countsText(r) },
              { header: 'COMMAND', get: (r) => r.argv.join(' ').slice(0, 60) },
            ]),
    );
    return 0;
  },
};
