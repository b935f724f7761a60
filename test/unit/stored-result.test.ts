// A task result read back from Redis is external input: one schema, and the checks every reader applies.
import { describe, expect, it } from 'vitest';
import { taskResult } from '../../scheduler/index.js';
import { readResult, TaskResultSchema } from '../../scheduler/queue/stored-result.js';

const good = taskResult({ runId: 'r1', taskId: '1', host: '127.0.0.1:8088', outcome: 'succeeded', reason: '' }, { exitCode: 0, attempts: 1 });
const json = (over: Record<string, unknown> = {}): string => JSON.stringify({ ...good, ...over });

describe('stored task results', () => {
  it('accepts a result as workers publish it, for its run and task', () => {
    const r = readResult(json(), { runId: 'r1', taskId: '1' });
    expect(r).toEqual({ ok: true, result: good });
    expect(readResult(Buffer.from(json()), { runId: 'r1' }).ok).toBe(true);
  });

  it('drops fields a result does not have', () => {
    const r = readResult(json({ input: '../x', extra: 1 }), { runId: 'r1', taskId: '1' });
    expect(r.ok && Object.keys(r.result).sort()).toEqual(Object.keys(good).sort());
  });

  it('refuses what is not JSON, null, or not an object', () => {
    for (const raw of ['{not json', 'null', '[]', '"x"', '', undefined]) expect(readResult(raw, { runId: 'r1' }).ok, String(raw)).toBe(false);
  });

  it('refuses a task id that is not one gaxx makes, naming the field', () => {
    for (const taskId of ['/../../../../tmp/x', '..', '', 'a/b', '1\x1b[2K', 'x'.repeat(81)]) {
      const r = readResult(json({ taskId }), { runId: 'r1' });
      expect(r.ok, taskId).toBe(false);
      if (!r.ok) expect(r.why).toMatch(/^taskId: /);
    }
  });

  it('refuses a result of another run or another task than its entry', () => {
    expect(readResult(json(), { runId: 'r2', taskId: '1' })).toEqual({ ok: false, why: 'runId: names another run' });
    expect(readResult(json(), { runId: 'r1', taskId: '2' })).toEqual({ ok: false, why: 'taskId: differs from its entry' });
  });

  it('refuses fields of the wrong type, with every dot-path', () => {
    const r = readResult(json({ outcome: '__proto__', startedOn: [1], attempts: -1, exitCode: 'x' }), { runId: 'r1' });
    expect(r.ok).toBe(false);
    if (!r.ok) for (const p of ['outcome', 'startedOn.0', 'attempts', 'exitCode']) expect(r.why).toContain(`${p}: `);
  });

  it('reports problems printable (a message may quote what was read)', () => {
    const r = TaskResultSchema.safeParse({ ...good, outcome: 'x\x1b[31m' });
    expect(r.success).toBe(false);
    const read = readResult(json({ outcome: 'x\x1b[31m' }), { runId: 'r1' });
    // eslint-disable-next-line no-control-regex
    expect(!read.ok && read.why).not.toMatch(/\x1b/);
  });
});
