import { describe, expect, it } from 'vitest';
import { eachHostTasks, taskIdFor } from '../../cli/run/execute.js';
import { planRun } from '../../cli/run/plan.js';
import { recordTask } from '../../cli/run/records.js';
import { parseRunSpec } from '../../scheduler/queue/task.js';

describe('gaxx run tasks', () => {
  it('each-host: one valid pinned task per address', () => {
    const plan = planRun({ agent: ['127.0.0.1:8088,[::1]:9000'], timeout: '2500ms', retries: '2', env: ['A=1'] }, ['uptime'], 8088);
    const tasks = eachHostTasks(plan, plan.agents as string[]);
    expect(tasks.map((t) => t.taskId)).toEqual([taskIdFor(0, '127.0.0.1:8088'), taskIdFor(1, '[::1]:9000')]);
    expect(tasks[1]).toMatchObject({
      agents: ['[::1]:9000'],
      target: { host: '[::1]:9000' },
      timeoutMs: 2500,
      env: { A: '1' },
      retry: { attempts: 3, retryOnFailure: false },
    });
    expect(() => parseRunSpec({ runId: 'r1', tasks })).not.toThrow();
  });

  it('each-host over a fleet pins host names; task lists go to any host with the record substituted', () => {
    const fleet = planRun({ fleet: 'web' }, ['uptime'], 8088);
    expect(eachHostTasks(fleet, ['h1'])[0]).toMatchObject({ fleet: 'web', target: { host: 'h1' } });
    const list = planRun({ fleet: 'web', tasks: '-', 'output-cap': '4096' }, ['echo', 'x{}'], 8088);
    const { task: t, record } = recordTask(list, Buffer.from('a b'), 7);
    expect(record).toBe('a b');
    expect(t).toMatchObject({ taskId: '7', fleet: 'web', target: { any: true }, argv: ['echo', 'xa b'], outputCapBytes: 4096 });
    expect(() => parseRunSpec({ runId: 'r1', tasks: [t] })).not.toThrow();
  });

  it('refuses bad flags with USAGE', () => {
    expect(() => planRun({ agent: ['h:1'], retries: '-1' }, ['x'], 8088)).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => planRun({ agent: ['h:1'], env: ['NOEQUALS'] }, ['x'], 8088)).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});
