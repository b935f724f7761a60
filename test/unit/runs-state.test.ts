// The state `gaxx runs` and `runs show` give a run: one whose `gaxx run` stopped heartbeating
// with tasks still without a result is submitter-gone, whether its input was all enqueued or not.
import { describe, expect, it } from 'vitest';
import { shownState } from '../../cli/commands/runs.js';
import { PRODUCER_STALE_MS, type RunRecord } from '../../scheduler/queue/run-index.js';

const now = 1_800_000_000_000;
const record = (r: Partial<RunRecord>): RunRecord => ({
  runId: 'r1',
  argv: ['true'],
  fleet: 'f',
  agents: 3,
  mode: 'each-host',
  startedAt: now - 60_000,
  seen: now,
  state: 'running',
  enqueued: 3,
  total: 3,
  counts: {},
  finishedAt: null,
  ...r,
});

describe('shownState', () => {
  it('a running run whose submitter heartbeats is running', () => {
    expect(shownState(record({}), now)).toBe('running');
    expect(shownState(record({ total: null }), now)).toBe('running');
  });

  it('a running run whose submitter stopped heartbeating is submitter-gone, its input all enqueued or not', () => {
    const gone = now - PRODUCER_STALE_MS - 1;
    expect(shownState(record({ seen: gone }), now)).toBe('submitter-gone');
    expect(shownState(record({ seen: gone, total: null }), now)).toBe('submitter-gone');
  });

  it('an ended run shows its own state, its submitter long gone', () => {
    for (const state of ['done', 'cancelled', 'interrupted', 'failed'] as const) expect(shownState(record({ state, seen: 0 }), now)).toBe(state);
  });
});
