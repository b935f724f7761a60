// The one JSON shape of a task's result (cli/result-json.ts): a direct Exec whose agent went
// away after it started reads as `gaxx run` reports such a task, with the output that came.
import { describe, expect, it } from 'vitest';
import { lostExecResult, taskResultJson } from '../../cli/result-json.js';

describe('lostExecResult', () => {
  it('is an unknown outcome on its agent, with the output that came and the reason', () => {
    const r = lostExecResult('gone-1', '127.0.0.9:8088', { attached: false, replayed: false }, 'agent 127.0.0.9:8088 went away');
    const json = taskResultJson(
      r,
      [
        { stream: 1, data: Buffer.from('start') },
        { stream: 2, data: Buffer.from([0xff]) },
      ],
      { pid: 42 },
    );
    expect(json).toMatchObject({
      runId: '',
      taskId: 'gone-1',
      host: '127.0.0.9:8088',
      outcome: 'unknown',
      reason: 'UNAVAILABLE',
      exitCode: null,
      error: 'agent 127.0.0.9:8088 went away',
      startedOn: ['127.0.0.9:8088'],
      pid: 42,
      stdout: 'start',
      stderrBase64: '/w==',
    });
    expect(new Date(json.finishedAt as string).toISOString()).toBe(json.finishedAt);
  });
});
