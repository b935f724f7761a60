// A stop the agent decides on (its output cap, a Cancel, a timeout) is reported as what ended a
// task only when it reached the task's process while that still ran. On the built agent (run
// `npm run build` first), with the order of the two forced, not bet on: the agent (or its task
// launcher) is held with SIGSTOP while the task ends, so the agent can only act once the task
// has exited. A task that wrote past its cap and exited 0 by itself (the agent reads output behind
// the launcher: a fast writer can end before the agent sees it pass the cap) is reported with its
// own exit, its output cut at the cap (outputCapped), not killed; a task the agent's signal did
// stop at the cap is killed (reason output_cap), also when it caught the SIGTERM and exited 0.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { auditEvents, markerDir } from '../helpers/agent.js';
import { useAgentWorld } from '../helpers/agent-world.js';
import { execCollect, exitOf, unary, type ExecResult } from '../helpers/grpc.js';
import { taskGate } from '../helpers/gate.js';
import { eventually } from '../helpers/poll.js';
import { childPids, statFields } from '../helpers/procs.js';
import type { ExecEvent__Output, ExecRequest } from '../../proto/index.js';

const w = useAgentWorld('gaxx-stop-after-end', () => ({ args: ['--capacity', '4'] }));
let n = 0;

/** The agent's task launcher: its child running the launcher script. */
function launcherPid(): number {
  const pid = childPids(w.agent.pid).find((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('launcher');
    } catch {
      return false;
    }
  });
  if (pid === undefined) throw new Error('the agent has no task launcher running');
  return pid;
}

/**
 * Runs `req`; once the agent says Started, `held` is stopped (SIGSTOP), `whileHeld` runs (it lets
 * the task end and waits for what the test needs), and `held` goes on (SIGCONT).
 */
async function runHeld(req: ExecRequest, held: () => number, whileHeld: (pid: number) => Promise<void>): Promise<ExecResult> {
  let step: Promise<void> | undefined;
  const r = await execCollect(w.op.agent, req, (ev: ExecEvent__Output) => {
    if (!ev.started || step) return;
    const pid = held();
    const taskPid = ev.started.pid;
    process.kill(pid, 'SIGSTOP');
    step = whileHeld(taskPid).finally(() => process.kill(pid, 'SIGCONT'));
  });
  await step;
  return r;
}

describe('a stop that reaches a task which already ended on its own', () => {
  it('a task that writes past its cap and exits 0 before the agent reads its output: its own exit, the output cut at the cap', async () => {
    const gate = taskGate();
    const marks = markerDir('cap-own');
    const flag = join(marks, 'flag');
    // 5000 bytes past a 1000-byte cap, then the shell goes on and exits 0 by itself.
    const script = `${gate.wait}; head -c 5000 /dev/zero | tr '\\0' x; echo "rc=$?" > '${flag}'`;
    const taskId = `cap-own-${++n}`;
    const r = await runHeld(
      { taskId, argv: ['sh', '-c', script], outputCapBytes: 1000 },
      () => w.agent.pid,
      async (pid) => {
        // The agent is held: the task writes it all and its launcher reaps it before the agent
        // has read a byte of its output.
        gate.open();
        expect(await eventually(() => statFields(pid) === undefined, 30_000, 10)).toBe(true);
      },
    );
    gate.remove();
    expect(readFileSync(flag, 'utf8')).toBe('rc=0\n');
    expect(r.stdout).toBe('x'.repeat(1000));
    expect(exitOf(r)).toMatchObject({ code: 0, signal: '', reason: '', truncated: true, outputCapped: true, stdoutBytes: 1000 });
    // The audit log says the same: its own exit, no reason, the output cut at its cap.
    const finished = () => auditEvents(w.agent.auditLog).find((e) => e.event === 'exec_finished' && e.taskId === taskId);
    expect(await eventually(() => finished() !== undefined, 10_000, 20)).toBe(true);
    expect(finished()).toMatchObject({ code: 0, outputCapped: true });
    expect(finished()?.reason).toBeUndefined();
  });

  it('a Cancel that comes while the task has exited but is not yet reaped reached nothing: its own exit', async () => {
    const gate = taskGate();
    const taskId = `cancel-own-${++n}`;
    const r = await runHeld({ taskId, argv: ['sh', '-c', `${gate.wait}; exit 0`] }, launcherPid, async (pid) => {
      // The launcher is held: the task exits and stays a zombie nobody reaps; the agent still
      // takes it for running, and its Cancel sends the stop.
      gate.open();
      expect(await eventually(() => statFields(pid)?.[0] === 'Z', 30_000, 10)).toBe(true);
      expect(await unary(w.op.agent.Cancel.bind(w.op.agent), { taskId })).toMatchObject({ ok: true, value: { found: true } });
    });
    gate.remove();
    expect(exitOf(r)).toMatchObject({ code: 0, signal: '', reason: '' });
  });
});

describe('a stop that reaches the running task', () => {
  it('a task that keeps writing is stopped at its cap: SIGTERM, reason output_cap', async () => {
    const r = await execCollect(w.op.agent, { taskId: `cap-stop-${++n}`, argv: ['sh', '-c', 'while :; do echo xxxxxxxxxxxxxxx; done'], outputCapBytes: 1000 });
    expect(r.stdout).toHaveLength(1000);
    expect(exitOf(r)).toMatchObject({ code: -1, signal: 'SIGTERM', reason: 'output_cap', truncated: true, outputCapped: true, stdoutBytes: 1000 });
  });

  it('a task stopped at its cap that catches the SIGTERM and exits 0 is still stopped by the agent (reason output_cap)', async () => {
    const marks = markerDir('cap-trap');
    const caught = join(marks, 'caught');
    const script = `trap "echo > '${caught}'; exit 0" TERM; while :; do echo xxxxxxxxxxxxxxx; done`;
    const r = await execCollect(w.op.agent, { taskId: `cap-trap-${++n}`, argv: ['sh', '-c', script], outputCapBytes: 1000 });
    expect(existsSync(caught)).toBe(true);
    expect(exitOf(r)).toMatchObject({ code: 0, signal: '', reason: 'output_cap', truncated: true, outputCapped: true });
  });
});
