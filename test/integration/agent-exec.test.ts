// Exec through a real agent process over real mTLS: streaming, exits, signals, timeout,
// cancel, output cap, stdin, clean env, attach/replay, capacity.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { execCollect, exitOf, rawAgentClient, unary, type ExecResult, type RawClients } from '../helpers/grpc.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { taskGate } from '../helpers/gate.js';
import { awaitPidsWith, noneLeft, sleepMarker } from '../helpers/procs.js';
import type { InfoRequest, InfoResponse__Output } from '../../proto/index.js';

let dir: string;
let pki: Pki;
let agent: AgentProcess;
let op: RawClients;

const info = async () => {
  const r = await unary<InfoRequest, InfoResponse__Output>(op.agent.Info.bind(op.agent), {});
  if (!r.ok) throw new Error(`Info failed: ${r.status}`);
  return r.value;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-agent-exec-'));
  pki = await makePki(dir);
  agent = await startAgent({ certsDir: pki.agent.dir, env: { GAXX_TEST_SECRET: 'hunter2' }, args: ['--capacity', '2'] });
  op = rawAgentClient(agent.address, pki.clients.operator.dir);
});
afterAll(async () => {
  op?.close();
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe('agent Exec', () => {
  it('streams output as it is produced and reports the exit code', async () => {
    let firstChunkBeforeExit = false;
    let sawExit = false;
    // The task prints 'two' only once 'one' has arrived here.
    const gate = taskGate();
    const r = await execCollect(op.agent, { taskId: 'stream-1', argv: ['sh', '-c', `echo one; ${gate.wait}; echo two; exit 3`] }, (ev) => {
      if (ev.stdout && !sawExit && ev.stdout.toString().includes('one')) {
        firstChunkBeforeExit = !ev.stdout.toString().includes('two');
        gate.open();
      }
      if (ev.exit) sawExit = true;
    });
    gate.remove();
    expect(r.error).toBeUndefined();
    expect(r.events[0]?.started?.pid).toBeGreaterThan(0);
    expect(firstChunkBeforeExit).toBe(true);
    expect(r.stdout).toBe('one\ntwo\n');
    expect(exitOf(r)).toMatchObject({ code: 3, signal: '', truncated: false, reason: '', stdoutBytes: 8 });
  });

  it('reports a signal death and a spawn failure (127)', async () => {
    const sig = await execCollect(op.agent, { taskId: 'sig-1', argv: ['sh', '-c', 'kill -USR1 $$'] });
    expect(exitOf(sig)).toMatchObject({ code: -1, signal: 'SIGUSR1' });
    const missing = await execCollect(op.agent, { taskId: 'enoent-1', argv: ['/no/such/command'] });
    expect(exitOf(missing)?.code).toBe(127);
    expect(exitOf(missing)?.error).not.toBe('');
  });

  it("audits a task's start with its process's pid (the launcher's, once it has one), a failed start with pid 0, each before its end", async () => {
    const ok = await execCollect(op.agent, { taskId: 'audit-pid-1', argv: ['true'] });
    const pid = ok.events.find((e) => e.started)?.started?.pid ?? 0;
    expect(pid).toBeGreaterThan(0);
    await execCollect(op.agent, { taskId: 'audit-pid-2', argv: ['/no/such/command'] });
    const lines = auditEvents(agent.auditLog).filter((e) => e.taskId === 'audit-pid-1' || e.taskId === 'audit-pid-2');
    expect(lines.map((e) => [e.taskId, e.event, e.pid])).toEqual([
      ['audit-pid-1', 'exec_started', pid],
      ['audit-pid-1', 'exec_finished', undefined],
      ['audit-pid-2', 'exec_started', 0],
      ['audit-pid-2', 'exec_finished', undefined],
    ]);
  });

  it('writes stdin and closes it; runs with a clean env in the task dir', async () => {
    const r = await execCollect(op.agent, {
      taskId: 'stdin-1',
      argv: ['sh', '-c', 'cat; echo; env; pwd'],
      stdin: Buffer.from('from stdin'),
      env: { GREETING: 'hello' },
    });
    expect(exitOf(r)?.code).toBe(0);
    expect(r.stdout).toContain('from stdin\n');
    expect(r.stdout).toContain('GREETING=hello');
    expect(r.stdout).toContain('LANG=C.UTF-8');
    expect(r.stdout).not.toContain('GAXX_TEST_SECRET');
    expect(r.stdout).not.toContain('hunter2');
    // Its scratch dir (tasks/stdin-1 on the host), seen inside the sandbox as every scratch dir is.
    expect(r.stdout).toContain(join(agent.dataDir, 'tasks', '+task'));
  });

  it('refuses bad requests at the edge', async () => {
    const bad = [
      { taskId: '../x', argv: ['true'] },
      { taskId: 'ok-1', argv: [] },
      { taskId: 'ok-2', argv: ['true'], env: { 'BAD-NAME': 'x' } },
      { taskId: 'ok-3', argv: ['true'], workDir: '../outside' },
    ];
    const codes = [];
    for (const req of bad) codes.push((await execCollect(op.agent, req)).error?.gaxxCode);
    expect(codes).toEqual(['INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'PATH_ESCAPE']);
    expect((await info()).version).not.toBe('');
  });

  it('runs the longest argument Linux takes (131071 bytes: its 128 KiB count the NUL) and refuses a longer one at the edge', async () => {
    const script = 'printf %s "$1" | wc -c';
    const longest = await execCollect(op.agent, { taskId: 'arg-longest', argv: ['sh', '-c', script, '_', 'x'.repeat(131_071)] });
    expect(exitOf(longest)).toMatchObject({ code: 0 });
    expect(longest.stdout.trim()).toBe('131071');
    // Not started (it would fail with E2BIG, exit 126, as a failure of the command): refused.
    const over = await execCollect(op.agent, { taskId: 'arg-over', argv: ['sh', '-c', script, '_', 'x'.repeat(131_072)] });
    expect(over.error?.gaxxCode).toBe('INVALID_ARGUMENT');
    expect(exitOf(over)).toBeUndefined();
  });

  it('timeout kills the whole process group, grandchildren included', async () => {
    const m = sleepMarker();
    let seen: Promise<number> | undefined;
    // The sleep is forked before the echo but may exec after it: wait for it, within the deadline.
    const r = await execCollect(op.agent, { taskId: 'timeout-1', argv: ['sh', '-c', `sleep ${m} & echo $!; wait`], timeoutMs: 3000 }, (ev) => {
      if (ev.stdout) seen ??= awaitPidsWith(m, 1, 2500);
    });
    expect(await seen).toBe(1);
    expect(exitOf(r)).toMatchObject({ reason: 'timeout', signal: 'SIGTERM' });
    expect(await noneLeft(m)).toBe(true);
  });

  it('Cancel kills a running task', async () => {
    const m = sleepMarker();
    let seen: Promise<number> | undefined;
    const running = execCollect(op.agent, { taskId: 'cancel-1', argv: ['sh', '-c', `sleep ${m} & echo $!; wait`] }, (ev) => {
      if (!ev.stdout || seen) return;
      seen = awaitPidsWith(m, 1).then((count) => {
        void unary(op.agent.Cancel.bind(op.agent), { taskId: 'cancel-1' });
        return count;
      });
    });
    const r = await running;
    expect(await seen).toBe(1);
    expect(exitOf(r)).toMatchObject({ reason: 'cancelled', signal: 'SIGTERM' });
    expect(await noneLeft(m)).toBe(true);
    const again = await unary(op.agent.Cancel.bind(op.agent), { taskId: 'cancel-1' });
    expect(again).toMatchObject({ ok: true, value: { found: false } });
    // The audit log says who asked, each time, and whether a task was running.
    const cancels = auditEvents(agent.auditLog).filter((e) => e.event === 'task_cancel' && e.taskId === 'cancel-1');
    expect(cancels.map((e) => [e.identity, e.found])).toEqual([
      ['operator alice', true],
      ['operator alice', false],
    ]);
  });

  it('output cap truncates, says so, and stops the task', async () => {
    const r = await execCollect(op.agent, { taskId: 'cap-1', argv: ['sh', '-c', 'while :; do echo xxxxxxxxxxxxxxx; done'], outputCapBytes: 1000 });
    expect(r.stdout.length).toBe(1000);
    expect(exitOf(r)).toMatchObject({ truncated: true, reason: 'output_cap', stdoutBytes: 1000 });
  });

  it('attaches to a running task id and replays a finished one; the command runs once', async () => {
    const before = (await info()).tasksStartedTotal;
    // The task ends only once the second call has attached to it.
    const gate = taskGate();
    const argv = ['sh', '-c', `echo begin; ${gate.wait}; echo end`];
    let second: Promise<ExecResult> | undefined;
    const firstResult = await execCollect(op.agent, { taskId: 'once-1', argv }, (ev) => {
      if (ev.stdout && !second) {
        second = execCollect(op.agent, { taskId: 'once-1', argv }, (e) => e.started && gate.open());
        // A second call refused outright must not leave the task waiting.
        void second.finally(() => gate.open());
      }
    });
    const attached = await (second as Promise<ExecResult>);
    gate.remove();
    const replayed = await execCollect(op.agent, { taskId: 'once-1', argv });
    // All of its output was held: both begin with its first byte.
    expect(attached.events[0]?.started).toMatchObject({ attached: true, replayed: false, fromStart: true });
    expect(attached.stdout).toBe('begin\nend\n');
    expect(replayed.events[0]?.started).toMatchObject({ attached: false, replayed: true, fromStart: true });
    expect(replayed.stdout).toBe('begin\nend\n');
    expect(exitOf(replayed)).toEqual(exitOf(firstResult));
    expect((await info()).tasksStartedTotal).toBe(before + 1);
    const other = await execCollect(op.agent, { taskId: 'once-1', argv: ['true'] });
    expect(other.error?.gaxxCode).toBe('TASK_SPEC_MISMATCH');
  });

  it('replays the tail of an output larger than its replay buffer, saying it is not from the start', async () => {
    const argv = ['sh', '-c', 'head -c 100000 /dev/zero | tr "\\0" x; echo; echo last'];
    const first = await execCollect(op.agent, { taskId: 'tail-1', argv });
    expect(first.stdout.length).toBe(100006);
    const again = await execCollect(op.agent, { taskId: 'tail-1', argv });
    expect(again.events[0]?.started).toMatchObject({ replayed: true, fromStart: false });
    expect(again.stdout.length).toBeLessThan(first.stdout.length);
    expect(first.stdout.endsWith(again.stdout)).toBe(true);
  });

  it('refuses tasks beyond capacity with RESOURCE_EXHAUSTED and keeps serving', async () => {
    const a = execCollect(op.agent, { taskId: 'cap-a', argv: ['sleep', '100'] });
    const b = execCollect(op.agent, { taskId: 'cap-b', argv: ['sleep', '100'] });
    let running = 0;
    for (let i = 0; i < 200 && running < 2; i++) {
      running = (await info()).runningTasks;
      if (running < 2) await new Promise((r) => setTimeout(r, 25));
    }
    expect(running).toBe(2);
    const c = await execCollect(op.agent, { taskId: 'cap-c', argv: ['true'] });
    expect(c.error).toMatchObject({ status: 8, gaxxCode: 'RESOURCE_EXHAUSTED' });
    await unary(op.agent.Cancel.bind(op.agent), { taskId: 'cap-a' });
    await unary(op.agent.Cancel.bind(op.agent), { taskId: 'cap-b' });
    await Promise.all([a, b]);
    const d = await execCollect(op.agent, { taskId: 'cap-d', argv: ['true'] });
    expect(exitOf(d)?.code).toBe(0);
  });
});
