// A stop the agent asks for (a timeout, Cancel, its output cap, its shutdown) is the task's reason
// only when it reached the task's process while that still ran (spawn-one.ts: TaskEnd.signalled).
// One that reached nothing (the process had exited: reaped, or a zombie not yet reaped) leaves
// the task its own end: a task that wrote past its cap and exited before the agent read its output
// is reported with its own exit, its output cut (outputCapped), not stopped.
// The runner here is a stand-in for the launcher that reports the task's end when the test says,
// so the order of the two is exact; the real spawn's report (signalled) is checked below it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startExec, type ExecSink, type ExecSpec, type LaunchContext } from '../../agent/exec/exec.js';
import type { TaskRunner } from '../../agent/exec/launcher.js';
import { spawnOne, type SpawnedProcess, type SpawnEvents, type TaskEnd } from '../../agent/exec/spawn-one.js';

type Ended = Parameters<ExecSink['exit']>[0];

/** A runner whose one task reports its end through the returned `end` (signals it was sent in `signals`). */
function heldRunner(): { runner: TaskRunner; signals: string[]; end: (code: number, e: TaskEnd) => void; output: (data: Buffer) => void } {
  const signals: string[] = [];
  let ev: SpawnEvents | undefined;
  const runner: TaskRunner = {
    spawn(_head, _body, events) {
      ev = events;
      events.started(4242);
      return { signal: (phase) => signals.push(phase) };
    },
    prepare: () => undefined,
    close: () => undefined,
  };
  return { runner, signals, end: (code, e) => ev?.exit(code, null, e), output: (data) => ev?.output('stdout', data) };
}

function spec(runner: TaskRunner, timeoutMs: number): ExecSpec {
  const launch = { runner, sandbox: { kind: 'none', detail: 'test', remedy: 'none' }, workRoot: '/tmp', paths: {} } as unknown as LaunchContext;
  return { taskId: 't1', argv: ['true'], env: {}, cwd: '/tmp', workRel: '.', stdin: Buffer.alloc(0), timeoutMs, outputCapBytes: 1 << 20, launch };
}

function run(s: ExecSpec): { ended: Promise<Ended>; kill: ReturnType<typeof startExec>['kill'] } {
  let done: (e: Ended) => void = () => undefined;
  const ended = new Promise<Ended>((r) => (done = r));
  const h = startExec(s, { started: () => undefined, output: () => undefined, exit: done, refused: () => undefined });
  return { ended, kill: (why, grace) => h.kill(why, grace) };
}

describe('a stop asked for after the task ended', () => {
  it('a timeout whose signal reached nothing (the process had ended) is not its reason', async () => {
    const r = heldRunner();
    const { ended } = run(spec(r.runner, 5));
    // The timeout fires (its SIGTERM goes out); the end says it reached no running process.
    await expect.poll(() => r.signals).toEqual(['term']);
    r.end(0, { signalled: false });
    expect(await ended).toMatchObject({ code: 0, reason: '' });
  });

  it('a timeout whose signal reached the running task stays its reason, also when the task caught it and exited 0', async () => {
    const r = heldRunner();
    const { ended } = run(spec(r.runner, 5));
    await expect.poll(() => r.signals).toEqual(['term']);
    r.end(0, { signalled: true });
    expect(await ended).toMatchObject({ code: 0, reason: 'timeout' });
  });

  it('a cancel that reached nothing is not its reason either; one that reached the task is', async () => {
    const late = heldRunner();
    const a = run(spec(late.runner, 60_000));
    a.kill('cancelled');
    late.end(1, { signalled: false });
    expect(await a.ended).toMatchObject({ code: 1, reason: '' });

    const early = heldRunner();
    const b = run(spec(early.runner, 60_000));
    b.kill('cancelled');
    early.end(1, { signalled: true });
    expect(await b.ended).toMatchObject({ code: 1, reason: 'cancelled' });
  });

  it('output past the cap of a task that ended before the stop reached it: its own exit, the output cut and said so', async () => {
    const r = heldRunner();
    const s = { ...spec(r.runner, 60_000), outputCapBytes: 1024 };
    const { ended } = run(s);
    r.output(Buffer.alloc(5000, 0x79));
    expect(r.signals).toEqual(['term']);
    r.end(0, { signalled: false });
    expect(await ended).toMatchObject({ code: 0, reason: '', truncated: true, outputCapped: true, stdoutBytes: 1024 });
  });

  it('output past the cap of a task the stop reached: reason output_cap', async () => {
    const r = heldRunner();
    const s = { ...spec(r.runner, 60_000), outputCapBytes: 1024 };
    const { ended } = run(s);
    r.output(Buffer.alloc(5000, 0x79));
    r.end(0, { signalled: true });
    expect(await ended).toMatchObject({ code: 0, reason: 'output_cap', truncated: true, outputCapped: true, stdoutBytes: 1024 });
  });
});

/** Blocks this thread (and so its event loop, which reaps children) for `ms`. */
function block(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The state letter of `pid` in /proc (R, S, Z...), '' when gone. */
function stateOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return '';
  }
}

describe('the real spawn says whether a stop reached the running process', () => {
  /** Starts `script` under sh; resolves with its pid, its controls and its end. */
  async function start(
    script: string,
  ): Promise<{ pid: number; proc: SpawnedProcess; end: Promise<{ code: number | null; signal: string | null; end?: TaskEnd }> }> {
    let pid = 0;
    let done: (e: { code: number | null; signal: string | null; end?: TaskEnd }) => void = () => undefined;
    const end = new Promise<{ code: number | null; signal: string | null; end?: TaskEnd }>((r) => (done = r));
    const proc = await spawnOne(
      { file: 'sh', args: ['-c', script], cwd: '/tmp', env: { PATH: '/usr/bin:/bin' }, fd3Bytes: 0, probe: undefined, sandboxed: false, mkdir: false },
      Buffer.alloc(0),
      { started: (p) => (pid = p), output: () => undefined, exit: (code, signal, e) => done({ code, signal, ...(e ? { end: e } : {}) }) },
    );
    return { pid, proc, end };
  }

  it('a signal to a running process reached it', async () => {
    const t = await start('sleep 60');
    t.proc.signal('term');
    expect(await t.end).toMatchObject({ code: null, signal: 'SIGTERM', end: { signalled: true } });
  });

  it('a signal to a process that exited but is not reaped yet (a zombie) reached nothing', async () => {
    // It exits at once; this thread waits, its event loop held (so nothing
    // reaps the process), until the process is a zombie, and sends the stop then.
    const t = await start('exec true');
    for (let i = 0; i < 2000 && stateOf(t.pid) !== 'Z'; i++) block(5);
    expect(stateOf(t.pid)).toBe('Z');
    t.proc.signal('term');
    expect(await t.end).toMatchObject({ code: 0, signal: null, end: { signalled: false } });
  });

  it('a signal after the process was reaped is not sent and reached nothing', async () => {
    const t = await start('exit 3');
    const ended = await t.end;
    t.proc.signal('term');
    expect(ended).toMatchObject({ code: 3, end: { signalled: false } });
  });
});
