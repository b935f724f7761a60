// The one JSON shape of a task's result (cli/result-json.ts): a direct Exec whose agent went
// away after it started reads as `gaxx run` reports such a task, with the output that came.
import { describe, expect, it } from 'vitest';
import { lostExecResult, taskResultJson } from '../../cli/result-json.js';

describe('lostExecResult', () => {
  it('is an unknown outcome on its agent, with the output that came and the reason', () => {
    const output = [
      { stream: 1 as const, data: Buffer.from('start') },
      { stream: 2 as const, data: Buffer.from([0xff]) },
      { stream: 1 as const, data: Buffer.from('ed') },
    ];
    const r = lostExecResult('gone-1', '127.0.0.9:8088', { attached: false, replayed: false }, 'agent 127.0.0.9:8088 went away', { ms: 3120, output });
    const json = taskResultJson(r, output, { pid: 42 });
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
      stdout: 'started',
      stderrBase64: '/w==',
      // What was seen: the time it ran until its agent went away, the bytes that came.
      durationMs: 3120,
      stdoutBytes: 7,
      stderrBytes: 1,
    });
    expect(new Date(json.finishedAt as string).toISOString()).toBe(json.finishedAt);
  });
});
