// The launcher keeps a stop that comes while its task is still starting, and only then: a stop
// that crossed its task's exit names a task that is gone for good (task numbers are not reused),
// and kept it would stay for the launcher's life.
import { describe, expect, it } from 'vitest';
import { EarlySignals } from '../../agent/exec/early-signals.js';

describe('stops that come before their task has a process', () => {
  it('are kept for a task that is starting and handed over once it is there', () => {
    const e = new EarlySignals();
    e.begin(1);
    expect(e.arrived(1, 'term')).toBe(true);
    expect(e.started(1)).toBe('term');
    expect(e.size).toBe(0);
  });

  it('a kill is never weakened by a later term', () => {
    const e = new EarlySignals();
    e.begin(2);
    e.arrived(2, 'kill');
    e.arrived(2, 'term');
    expect(e.started(2)).toBe('kill');
  });

  it('a task that starts with no stop kept gets none', () => {
    const e = new EarlySignals();
    e.begin(3);
    expect(e.started(3)).toBeUndefined();
    expect(e.size).toBe(0);
  });

  it('are dropped for a task that ended or was never starting: nothing stays behind', () => {
    const e = new EarlySignals();
    // A task that ended before its process was handed over (its start failed).
    e.begin(4);
    e.arrived(4, 'term');
    e.ended(4);
    // Stops that crossed their tasks' exits, for as many tasks as a long-lived launcher sees.
    for (let id = 5; id < 10_005; id++) expect(e.arrived(id, id % 2 ? 'term' : 'kill')).toBe(false);
    expect(e.size).toBe(0);
    // A later task with a number seen before in a stop gets no stale stop.
    e.begin(7);
    expect(e.started(7)).toBeUndefined();
  });
});
