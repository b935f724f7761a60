import { describe, expect, it } from 'vitest';
import { buildTasks, runExitCode, taskIdFor } from '../../cli/commands/run.js';
import { exitCodeFor } from '../../proto/index.js';
import { parseRunSpec, taskResult, type TaskResult } from '../../scheduler/index.js';

const result = (outcome: TaskResult['outcome']): TaskResult =>
  taskResult({ runId: 'r', taskId: 't', host: 'h:1', outcome, reason: '' }, { exitCode: outcome === 'succeeded' ? 0 : 1, durationMs: 1, attempts: 1, finishedAt: '' });

describe('gaxx run helpers', () => {
  it('makes one valid pinned task per address', () => {
    const tasks = buildTasks(['127.0.0.1:8088', '[::1]:9000'], ['uptime'], { timeout: '2500ms', retries: '2', env: ['A=1'] });
    expect(tasks.map((t) => t.taskId)).toEqual([taskIdFor(0, '127.0.0.1:8088'), taskIdFor(1, '[::1]:9000')]);
    expect(tasks[1]).toMatchObject({ agents: ['[::1]:9000'], target: { host: '[::1]:9000' }, timeoutMs: 2500, env: { A: '1' }, retry: { attempts: 3, retryOnFailure: false } });
    expect(() => parseRunSpec({ runId: 'r1', tasks })).not.toThrow();
  });

  it('refuses bad flags with USAGE', () => {
    expect(() => buildTasks(['h:1'], ['x'], { retries: '-1' })).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => buildTasks(['h:1'], ['x'], { env: ['NOEQUALS'] })).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });

  it('exits 0 only when every task succeeded', () => {
    expect(runExitCode([result('succeeded'), result('succeeded')])).toBe(0);
    expect(runExitCode([result('succeeded'), result('failed')])).toBe(1);
    expect(runExitCode([result('timeout')])).toBe(1);
    expect(runExitCode([result('failed'), result('unreachable')])).toBe(exitCodeFor('UNAVAILABLE'));
  });
});

describe('durations need a unit', () => {
  it('refuses a bare number for --timeout (30 could be ms or s) and takes 30s', () => {
    expect(() => buildTasks(['h:1'], ['x'], { timeout: '30' })).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(buildTasks(['h:1'], ['x'], { timeout: '30s' })[0]).toMatchObject({ timeoutMs: 30_000 });
  });
});
