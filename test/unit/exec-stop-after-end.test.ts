// A stop the agent asks for (a timeout, Cancel, its shutdown) once the task's process was already
// reaped, while its pipes were still being drained (spawn-one.ts: a task that passed its
// descriptors to another process), reached nothing: the task ended on its own and is reported so,
// not `timeout`. A stop asked for before the process ended stays the task's reason, and so does
// the output cap whenever the output past it is read (`yes | head -c 5000` may end before the
// agent reads its first byte).
// The runner here is a stand-in for the launcher that reports the task's end when the test says,
// so the order of the two is exact; the real spawn's report (drainedMs) is checked below it.
import { describe, expect, it } from 'vitest';
import { startExec, type ExecSink, type ExecSpec, type LaunchContext } from '../../agent/exec/exec.js';
import { inProcessRunner, type TaskRunner } from '../../agent/exec/launcher.js';
import type { SpawnEvents, TaskEnd } from '../../agent/exec/spawn-one.js';

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
  const h = startExec(s, { started: () => undefined, output: () => undefined, exit: done });
  return { ended, kill: (why, grace) => h.kill(why, grace) };
}

describe('a stop asked for after the task ended', () => {
  it('a timeout that fires while the ended task is drained is not its reason', async () => {
    const r = heldRunner();
    const t0 = performance.now();
    const { ended } = run(spec(r.runner, 5));
    // The timeout fires (its SIGTERM goes out); only then does the end arrive, saying the
    // process was reaped since before the task started.
    await expect.poll(() => r.signals).toEqual(['term']);
    r.end(0, { drainedMs: performance.now() - t0 + 1 });
    expect(await ended).toMatchObject({ code: 0, reason: '' });
  });

  it('a timeout that fired before the process ended stays its reason', async () => {
    const r = heldRunner();
    const { ended } = run(spec(r.runner, 5));
    await expect.poll(() => r.signals).toEqual(['term']);
    // Reaped just now (after the stop), drained at once.
    r.end(0, { drainedMs: 0 });
    expect(await ended).toMatchObject({ code: 0, reason: 'timeout' });
  });

  it('a cancel while the ended task is drained is not its reason either; one before its end is', async () => {
    const late = heldRunner();
    const t0 = performance.now();
    const a = run(spec(late.runner, 60_000));
    a.kill('cancelled');
    late.end(1, { drainedMs: performance.now() - t0 + 1 });
    expect(await a.ended).toMatchObject({ code: 1, reason: '' });

    const early = heldRunner();
    const b = run(spec(early.runner, 60_000));
    b.kill('cancelled');
    early.end(1, { drainedMs: 0 });
    expect(await b.ended).toMatchObject({ code: 1, reason: 'cancelled' });
  });

  it('output past the cap read after the process ended is still the reason: the output was cut', async () => {
    const r = heldRunner();
    const t0 = performance.now();
    const s = { ...spec(r.runner, 60_000), outputCapBytes: 1024 };
    const { ended } = run(s);
    r.output(Buffer.alloc(5000, 0x79));
    r.end(0, { drainedMs: performance.now() - t0 + 1 });
    expect(await ended).toMatchObject({ code: 0, reason: 'output_cap', truncated: true, stdoutBytes: 1024 });
  });

  it('the real spawn reports how long before its end report the process was reaped', async () => {
    const ends: Array<TaskEnd | undefined> = [];
    await new Promise<void>((resolve) => {
      inProcessRunner.spawn(
        { file: 'sh', args: ['-c', 'exit 3'], cwd: '/tmp', env: { PATH: '/usr/bin:/bin' }, fd3Bytes: 0, probe: undefined, sandboxed: false, mkdir: false },
        Buffer.alloc(0),
        {
          started: () => undefined,
          output: () => undefined,
          exit: (code, _signal, end) => {
            expect(code).toBe(3);
            ends.push(end);
            resolve();
          },
        },
      );
    });
    expect(ends[0]?.drainedMs).toBeGreaterThanOrEqual(0);
    expect(ends[0]?.drainedMs).toBeLessThan(60_000);
  });
});
