// The task registry's journal, with real child processes: a registry reopened on the same state
// dir (as after an agent restart) replays a finished task and reports a running one as lost in
// the restart, after killing what was left of its process group, as it does one it had asked its
// launcher to start and not heard of since (written ahead), and forgets one the agent could not
// set up; the file stays bounded.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { LAUNCHER_LOST, LOST_IN_RESTART, type GaxxError } from '../../proto/index.js';
import { sweepLostGroup } from '../../agent/exec/journal.js';
import { processStartTicks } from '../../proto/index.js';
import { TaskRegistry } from '../../agent/exec/tasks.js';
import type { ExecSpec, LaunchContext } from '../../agent/exec/exec.js';
import type { TaskRunner } from '../../agent/exec/launcher.js';
import { skewedClock } from '../helpers/manual-clock.js';
import { alive } from '../helpers/procs.js';

const dir = mkdtempSync(join(tmpdir(), 'gaxx-journal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spec = (taskId: string, argv: string[]): ExecSpec => ({
  taskId,
  argv,
  env: {},
  cwd: dir,
  workRel: '',
  stdin: Buffer.alloc(0),
  timeoutMs: 60_000,
  outputCapBytes: 1 << 20,
});

describe('TaskJournal', () => {
  it('replays a finished task and reports a running one lost after a restart, its processes killed', async () => {
    const state = join(dir, 'state1');
    const before = new TaskRegistry({ capacity: 4, stateDir: state });
    await new Promise<void>((resolve) => before.start(spec('done', ['sh', '-c', 'echo hello']), (ev) => ev.exit && resolve()));
    const running = before.start(spec('busy', ['sleep', '60']), () => undefined);
    await vi.waitFor(() => expect(running?.pid).toBeGreaterThan(0));
    const pid = running?.pid as number;
    // The agent "dies": a new registry on the same state dir, the old one never shut down.
    const after = new TaskRegistry({ capacity: 4, stateDir: state });
    expect(after.lostInRestart).toEqual(['busy']);
    await vi.waitFor(() => expect(alive(pid)).toBe(false));
    const lost = after.get('busy');
    expect(lost?.running).toBe(false);
    expect(lost?.replayEvents().at(-1)?.exit).toMatchObject({ reason: LOST_IN_RESTART });
    const done = after.get('done');
    const evs = done?.replayEvents() ?? [];
    expect(Buffer.concat(evs.flatMap((e) => (e.stdout ? [e.stdout as Buffer] : []))).toString()).toBe('hello\n');
    expect(evs.at(-1)?.exit).toMatchObject({ code: 0, reason: '' });
    // Same command check survives too: the key is kept.
    expect(done?.specKey).toBe(before.get('done')?.specKey);
    await after.shutdown(0);
    await before.shutdown(0);
    // A third start does not report it lost again (the journal recorded the verdict).
    const third = new TaskRegistry({ capacity: 1, stateDir: state });
    expect(third.lostInRestart).toEqual([]);
    expect(third.get('busy')?.replayEvents().at(-1)?.exit).toMatchObject({ reason: LOST_IN_RESTART });
    await third.shutdown(0);
  });

  it('keeps a signed task’s expiry across a restart: forgotten afterwards, its id is spent', async () => {
    const state = join(dir, 'state-signed');
    const until = Date.now() + 3_600_000;
    const before = new TaskRegistry({ capacity: 2, stateDir: state });
    await new Promise<void>((resolve) => before.start(spec('signed', ['true']), (ev) => ev.exit && resolve(), 'key-signed', until));
    await before.shutdown(0);
    const clock = skewedClock();
    const after = new TaskRegistry({ capacity: 2, stateDir: state, retentionMs: 60_000, clock: clock.now });
    expect(after.get('signed')?.onceUntil).toBe(until);
    clock.advance(60_001);
    expect(after.get('signed')).toBeUndefined();
    expect(after.spentUntil('signed')).toBe(until);
    await after.shutdown(0);
    // The restore rewrote the journal without the forgotten task: its id is kept as spent, also
    // after a second restart (and over a compaction, which writes the same).
    const third = new TaskRegistry({ capacity: 2, stateDir: state, retentionMs: 60_000, clock: clock.now });
    expect([third.get('signed'), third.spentUntil('signed')]).toEqual([undefined, until]);
    await third.shutdown(0);
    const lines = readFileSync(join(state, 'tasks.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l) as { t: string; id: string })).toContainEqual({ t: 'p', id: 'signed', u: until });
  });

  it('forgets a task whose process started but which the agent could not set up: not lost after a restart, its id (signed) free to run', async () => {
    const state = join(dir, 'state-unstarted');
    // A stand-in for the launcher: the sandbox's process starts (a real one), then it ends
    // before it ran the command (spawn-one.ts sandboxEnd).
    const sandbox = spawn('sleep', ['60'], { stdio: 'ignore' });
    const pid = sandbox.pid as number;
    const runner: TaskRunner = {
      spawn(_head, _body, ev) {
        ev.started(pid, undefined, processStartTicks(pid));
        setImmediate(() => ev.exit(null, null, { setupFailed: { stage: 'sandbox', errno: 'SANDBOX_FAILED', message: 'bwrap: no namespace' } }));
        return { signal: () => undefined };
      },
      prepare: () => undefined,
      close: () => undefined,
    };
    const launch = { runner, sandbox: { kind: 'none', detail: 'test', remedy: 'none' }, workRoot: dir, paths: {} } as unknown as LaunchContext;
    const before = new TaskRegistry({ capacity: 1, stateDir: state });
    const refused = await new Promise<GaxxError | undefined>((resolve) =>
      before.start({ ...spec('unset', ['true']), launch }, (ev) => (ev.refused || ev.exit) && resolve(ev.refused), 'key-unset', Date.now() + 3_600_000),
    );
    expect([refused?.code, refused?.details?.notStarted]).toEqual(['UNAVAILABLE', true]);
    expect([before.get('unset'), before.running, before.spentUntil('unset')]).toEqual([undefined, 0, undefined]);
    // The agent "dies" and starts again: nothing of it is there, and its process was not swept.
    const after = new TaskRegistry({ capacity: 1, stateDir: state });
    expect([after.lostInRestart, after.get('unset'), after.spentUntil('unset')]).toEqual([[], undefined, undefined]);
    expect(alive(pid)).toBe(true);
    sandbox.kill('SIGKILL');
    await new Promise<void>((resolve) => after.start(spec('unset', ['true']), (ev) => ev.exit && resolve(), 'key-unset'));
    expect(after.get('unset')?.exit?.code).toBe(0);
    await after.shutdown(0);
    await before.shutdown(0);
  });

  /** A launch whose runner is `runner` (a stand-in for the launcher). */
  const launchWith = (runner: TaskRunner) =>
    ({ runner, sandbox: { kind: 'none', detail: 'test', remedy: 'none' }, workRoot: dir, paths: {} }) as unknown as LaunchContext;
  const silent: Pick<TaskRunner, 'prepare' | 'close'> = { prepare: () => undefined, close: () => undefined };

  it('reports a task lost after a restart when the agent died after asking for its spawn and before it heard of its process', async () => {
    const state = join(dir, 'state-ahead');
    // The launcher got the request and has not answered yet (it may have started the task); it
    // ends it when told to (the old registry's shutdown).
    let asked = 0;
    const launch = launchWith({
      ...silent,
      spawn(_head, _body, ev) {
        asked++;
        return { signal: () => ev.exit(null, 'SIGKILL', { signalled: true }) };
      },
    });
    const before = new TaskRegistry({ capacity: 1, stateDir: state });
    before.start({ ...spec('ahead', ['true']), launch }, () => undefined, 'key-ahead');
    expect(asked).toBe(1);
    const after = new TaskRegistry({ capacity: 1, stateDir: state });
    expect(after.lostInRestart).toEqual(['ahead']);
    const lost = after.get('ahead');
    expect([lost?.running, lost?.specKey]).toEqual([false, 'key-ahead']);
    expect(lost?.replayEvents().at(-1)?.exit).toMatchObject({
      reason: LOST_IN_RESTART,
      error: expect.stringMatching(/while it was starting the task; it may have started/),
    });
    await after.shutdown(0);
    await before.shutdown(0);
  });

  it('keeps the end of a task whose launcher died before it said the task started, across a restart', async () => {
    const state = join(dir, 'state-launcher-lost');
    const launch = launchWith({
      ...silent,
      spawn(_head, _body, ev) {
        setImmediate(() => ev.exit(null, 'SIGKILL', { lost: 'the launcher exited' }));
        return { signal: () => undefined };
      },
    });
    const before = new TaskRegistry({ capacity: 1, stateDir: state });
    await new Promise<void>((resolve) => before.start({ ...spec('gone', ['true']), launch }, (ev) => ev.exit && resolve(), 'key-gone'));
    const after = new TaskRegistry({ capacity: 1, stateDir: state });
    expect(after.lostInRestart).toEqual([]);
    expect(after.get('gone')?.replayEvents().at(-1)?.exit).toMatchObject({ reason: LAUNCHER_LOST });
    await after.shutdown(0);
    await before.shutdown(0);
  });

  it('forgets a task refused before its process started: not lost after a restart, its id free to run', async () => {
    const state = join(dir, 'state-refused-early');
    // The launcher could not be started: the task never reached one (launcher.ts).
    const launch = launchWith({
      ...silent,
      spawn(_head, _body, ev) {
        setImmediate(() => ev.exit(null, null, { setupFailed: { stage: 'launcher', errno: 'EAGAIN', message: 'no launcher' } }));
        return { signal: () => undefined };
      },
    });
    const before = new TaskRegistry({ capacity: 1, stateDir: state });
    const refused = await new Promise<GaxxError | undefined>((resolve) =>
      before.start({ ...spec('early', ['true']), launch }, (ev) => (ev.refused || ev.exit) && resolve(ev.refused), 'key-early'),
    );
    expect(refused?.details?.notStarted).toBe(true);
    const after = new TaskRegistry({ capacity: 1, stateDir: state });
    expect([after.lostInRestart, after.get('early')]).toEqual([[], undefined]);
    await new Promise<void>((resolve) => after.start(spec('early', ['true']), (ev) => ev.exit && resolve(), 'key-early'));
    expect(after.get('early')?.exit?.code).toBe(0);
    await after.shutdown(0);
    await before.shutdown(0);
  });

  it('never kills a process whose pid matches but whose start time does not (pid reuse)', () => {
    const me = process.pid;
    expect(processStartTicks(me)).toBeGreaterThan(0);
    expect(sweepLostGroup({ pid: me, startTicks: processStartTicks(me) + 1 })).toBe(false);
    expect(alive(me)).toBe(true);
  });

  it('stays bounded: retention applies to the file after a restart', async () => {
    const state = join(dir, 'state2');
    const reg = new TaskRegistry({ capacity: 2, stateDir: state, maxFinished: 3 });
    for (const id of ['a', 'b', 'c', 'd', 'e']) await new Promise<void>((resolve) => reg.start(spec(id, ['true']), (ev) => ev.exit && resolve()));
    await reg.shutdown(0);
    const again = new TaskRegistry({ capacity: 2, stateDir: state, maxFinished: 3 });
    expect(['a', 'b'].map((id) => again.get(id))).toEqual([undefined, undefined]);
    expect(['c', 'd', 'e'].every((id) => again.get(id) !== undefined)).toBe(true);
    const ids = new Set(
      readFileSync(join(state, 'tasks.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { id: string }).id),
    );
    expect([...ids].sort()).toEqual(['c', 'd', 'e']);
    await again.shutdown(0);
  });
});
