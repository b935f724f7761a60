// Runs whose `gaxx run` is gone, with no scheduler daemon: `gaxx runs wait` serves and collects
// them, the run index shows how they ended, and exit codes follow the documented table. The
// built CLI, a real redis-server and real agents.
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { isCancelled } from '../../scheduler/queue/cancel.js';
import { getRunRecord } from '../../scheduler/queue/run-index.js';
import type { RunRecord } from '../../scheduler/index.js';
import { markerDir, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { type GaxxProcess, jsonLines, runGaxx, spawnGaxx, stopAllGaxx } from '../helpers/cli.js';
import { homeAgentCerts, initHome } from '../helpers/cli-world.js';
import { taskGate } from '../helpers/gate.js';
import { startRedis, withRedisAt, type TestRedis } from '../helpers/redis.js';

let home: string;
let agents: AgentProcess[];
let redis: TestRedis;
const dirs: string[] = [];

const env = (): Record<string, string> => ({ GAXX_REDIS_URL: redis.url });
const gaxx = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> => runGaxx(args, { home, env: env() });
const spawn = (args: string[]): GaxxProcess => spawnGaxx(args, { home, env: env() });

beforeAll(async () => {
  home = await initHome('gxro-');
  const certs = await homeAgentCerts(home);
  agents = await Promise.all([0, 1].map(() => startAgent({ certsDir: certs })));
  redis = await startRedis();
});

afterAll(async () => {
  await stopAllGaxx();
  await stopAllAgents();
  await redis?.destroy();
  for (const dir of [home, ...dirs]) rmSync(dir, { recursive: true, force: true });
});

const record = (runId: string): Promise<RunRecord | undefined> => withRedisAt(redis.url, (r) => getRunRecord(r, runId));
const cancelFlag = (runId: string): Promise<boolean> => withRedisAt(redis.url, (r) => isCancelled(r, runId));

/** How many of a run's tasks have their result stored (its done hash). */
function doneCount(runId: string): Promise<number> {
  return withRedisAt(redis.url, (r) => r.hlen(`{gaxx}:run:${runId}:done`));
}

/** A dir the tasks mark their start in (one file each), and a count of the marks. */
function marks(): { dir: string; started(): number } {
  const dir = markerDir('gxro-marks');
  dirs.push(dir);
  return { dir, started: () => readdirSync(dir).filter((f) => f.startsWith('started.')).length };
}

/** The words of `gaxx run EXTRA` over the agents whose tasks mark their start in `m`, then run `script`. */
function markedRun(extra: string[], m: ReturnType<typeof marks>, script: string): string[] {
  return ['run', ...extra, '--agent', agents.map((a) => a.address).join(','), '--', 'sh', '-c', `mktemp ${m.dir}/started.XXXXXX >/dev/null; ${script}`];
}

/** `gaxx run` (one task per agent, or --tasks) whose tasks wait at `gate`, killed (-9) once `n` started. */
async function killedRun(extra: string[], script: string, m: ReturnType<typeof marks>, n: number): Promise<string> {
  const run = spawn(markedRun(extra, m, script));
  await vi.waitFor(() => expect(m.started()).toBeGreaterThanOrEqual(n), { timeout: 60_000, interval: 100 });
  const runId = /gaxx: run (\S+)/.exec(run.stderr())?.[1] as string;
  expect(runId).toBeDefined();
  run.kill('SIGKILL');
  await run.done;
  return runId;
}

/** `gaxx run --json --tasks -` over the agents, its input a pipe the test writes to; each task marks its start in `m`, then runs `script` (its record is $0). */
function taskListOnPipe(m: ReturnType<typeof marks>, script: string): ReturnType<typeof spawnGaxx> {
  return spawnGaxx(markedRun(['--json', '--tasks', '-'], m, script), { home, env: env(), stdin: 'pipe' });
}

describe('a run whose gaxx run was killed, no daemon', () => {
  it('`runs wait` serves its remaining jobs and collects every result; the run index says done', async () => {
    const m = marks();
    const gate = taskGate();
    const runId = await killedRun([], `${gate.wait}; echo done`, m, 2);
    gate.open();
    // Documented: back once their 30 s lock expired, within seconds after.
    const r = await gaxx(['runs', 'wait', runId, '--json', '--wait-timeout', '55s']);
    gate.remove();
    expect(r.code, r.stderr).toBe(0);
    const lines = jsonLines(r.stdout);
    const tasks = lines.filter((x) => x.type === 'task');
    expect(tasks.map((t) => t.outcome)).toEqual(['succeeded', 'succeeded']);
    // Collected from the agents: not run again.
    for (const t of tasks) expect(t).toMatchObject({ mayHaveRepeated: false });
    expect(m.started()).toBe(2);
    expect(await record(runId)).toMatchObject({ state: 'done', counts: { succeeded: 2 } });
  }, 240_000);

  it('`runs cancel` then `runs wait`: the run stays cancelled (exit 130), a task stopped on its agent reports so', async () => {
    const m = marks();
    const gate = taskGate();
    const runId = await killedRun([], gate.wait, m, 2);
    const c = await gaxx(['runs', 'cancel', runId]);
    expect(c.code, c.stderr).toBe(0);
    const r = await gaxx(['runs', 'wait', runId, '--json', '--wait-timeout', '55s']);
    gate.open();
    gate.remove();
    expect(r.code, r.stderr).toBe(exitCodeFor('CANCELLED'));
    const tasks = jsonLines(r.stdout).filter((x) => x.type === 'task');
    expect(tasks.map((t) => t.outcome)).toEqual(['cancelled', 'cancelled']);
    expect(await record(runId)).toMatchObject({ state: 'cancelled', counts: { cancelled: 2 } });
    const listed = JSON.parse((await gaxx(['runs', '--json'])).stdout) as RunRecord[];
    expect(listed.find((x) => x.runId === runId)).toMatchObject({ state: 'cancelled' });
  }, 240_000);

  it('`runs cancel --wait` stops the running tasks itself when nothing serves the run, and says how they ended', async () => {
    const m = marks();
    const gate = taskGate();
    const runId = await killedRun([], `${gate.wait}; echo ran-on`, m, 2);
    // Nothing serves the run: its gaxx run is dead and no daemon runs. Without --wait the tasks
    // would wait at their gate on their agents until someone ran `runs wait`.
    const c = await gaxx(['runs', 'cancel', runId, '--wait', '--wait-timeout', '55s', '--json']);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout)).toMatchObject({ runId, cancelled: true, ended: { state: 'cancelled', counts: { cancelled: 2 } } });
    // Stopped on their agents while they waited: opening the gate now runs nothing further.
    gate.open();
    gate.remove();
    expect(await doneCount(runId)).toBe(2);
    expect(await record(runId)).toMatchObject({ state: 'cancelled', counts: { cancelled: 2 } });
    const stored = JSON.parse((await gaxx(['runs', 'show', runId, '--json'])).stdout) as { results: Array<{ outcome: string; signal: string | null }> };
    expect(stored.results.map((r) => r.outcome)).toEqual(['cancelled', 'cancelled']);
    expect(stored.results.every((r) => r.signal !== null)).toBe(true);
    expect(m.started()).toBe(2);
    // Again, now that every task has its result: at once, without saying it waits.
    const again = await gaxx(['runs', 'cancel', runId, '--wait']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain('waiting for run');
    expect(again.stdout).toContain('every task has its result now (cancelled 2)');
  }, 240_000);

  it('a run left at a second Ctrl-C is shown cancelled by `gaxx runs`, not running for ever', async () => {
    const m = marks();
    const gate = taskGate();
    const run = spawn([
      'run',
      '--agent',
      agents.map((a) => a.address).join(','),
      '--',
      'sh',
      '-c',
      `mktemp ${m.dir}/started.XXXXXX >/dev/null; trap '' TERM; ${gate.wait}`,
    ]);
    await vi.waitFor(() => expect(m.started()).toBe(2), { timeout: 60_000, interval: 100 });
    const runId = /gaxx: run (\S+)/.exec(run.stderr())?.[1] as string;
    run.kill('SIGINT');
    // The first Ctrl-C set the run's cancel flag before the second one quits at once.
    await vi.waitFor(async () => expect(await cancelFlag(runId)).toBe(true), { timeout: 10_000, interval: 50 });
    run.kill('SIGINT');
    expect((await run.done).code).toBe(exitCodeFor('CANCELLED'));
    await vi.waitFor(
      async () => {
        const listed = JSON.parse((await gaxx(['runs', '--json'])).stdout) as RunRecord[];
        expect(listed.find((x) => x.runId === runId)).toMatchObject({ state: 'cancelled' });
      },
      { timeout: 60_000, interval: 500 },
    );
    // Followed to its end, it stays cancelled, with every task's result.
    const r = await gaxx(['runs', 'wait', runId, '--json', '--wait-timeout', '55s']);
    gate.open();
    gate.remove();
    expect(r.code, r.stderr).toBe(exitCodeFor('CANCELLED'));
    expect(jsonLines(r.stdout).filter((x) => x.type === 'task')).toHaveLength(2);
    expect(await record(runId)).toMatchObject({ state: 'cancelled' });
  }, 240_000);

  it('a task list killed before its input ended: `runs wait` says interrupted and exits 12, not 0', async () => {
    const m = marks();
    const run = taskListOnPipe(m, 'echo "$0"');
    // Two records, and the input left open: the rest of it is never read.
    run.child.stdin?.write('one\ntwo\n');
    await vi.waitFor(() => expect(jsonLines(run.stdout()).filter((x) => x.type === 'task')).toHaveLength(2), { timeout: 60_000, interval: 100 });
    const runId = jsonLines(run.stdout())[0]?.runId as string;
    run.kill('SIGKILL');
    await run.done;
    const r = await gaxx(['runs', 'wait', runId, '--json', '--wait-timeout', '55s']);
    expect(r.code, r.stderr).toBe(exitCodeFor('UNAVAILABLE'));
    expect(r.stderr).toMatch(/interrupted/);
    expect(
      jsonLines(r.stdout)
        .filter((x) => x.type === 'task')
        .map((t) => t.outcome),
    ).toEqual(['succeeded', 'succeeded']);
    // A script reads why it got 12: the state, and the first record that never ran.
    expect(jsonLines(r.stdout).at(-1)).toMatchObject({ type: 'summary', succeeded: 2, state: 'interrupted', notEnqueuedFrom: 3 });
    expect(await record(runId)).toMatchObject({ state: 'interrupted', total: null, counts: { succeeded: 2 } });
    expect(m.started()).toBe(2);
  }, 240_000);

  it('a task list killed before its input ended, then cancelled: `runs wait` and `--resume` say which records were never enqueued, as its gaxx run would', async () => {
    const m = marks();
    const gate = taskGate();
    const run = taskListOnPipe(m, `if [ "$0" = three ]; then ${gate.wait}; fi; echo "$0"`);
    // Three records, the third held at the gate, and the input left open: the rest of it is never read.
    run.child.stdin?.write('one\ntwo\nthree\n');
    await vi.waitFor(() => expect(m.started()).toBe(3), { timeout: 60_000, interval: 100 });
    const runId = jsonLines(run.stdout())[0]?.runId as string;
    expect(runId).toBeDefined();
    run.kill('SIGKILL');
    await run.done;
    const c = await gaxx(['runs', 'cancel', runId]);
    expect(c.code, c.stderr).toBe(0);
    try {
      for (const again of [
        ['runs', 'wait', runId, '--json', '--wait-timeout', '55s'],
        ['run', '--resume', runId, '--json', '--wait-timeout', '55s'],
      ]) {
        const r = await gaxx(again);
        expect(r.code, r.stderr).toBe(exitCodeFor('CANCELLED'));
        expect(r.stderr).toContain(`run ${runId} cancelled; records from 4 on were never enqueued`);
        expect(jsonLines(r.stdout).at(-1)).toMatchObject({ type: 'summary', state: 'cancelled', notEnqueuedFrom: 4, succeeded: 2, cancelled: 1 });
      }
    } finally {
      gate.open();
      gate.remove();
    }
  }, 240_000);
});

describe('a run that has ended is never made cancelled afterwards', () => {
  it('`run --resume` of a done run whose stdout closes while it prints (`| head`) leaves it done, ended when it ended', async () => {
    // Output enough that the results are still being written when the reader has gone.
    const run = await gaxx(['run', '--json', '--agent', agents.map((a) => a.address).join(','), '--', 'sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x']);
    expect(run.code, run.stderr).toBe(0);
    const runId = jsonLines(run.stdout)[0]?.runId as string;
    const before = await record(runId);
    expect(before).toMatchObject({ state: 'done', counts: { succeeded: 2 } });
    // A plain resume of it prints it whole, and keeps when it ended.
    const again = await gaxx(['run', '--resume', runId, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect((await record(runId))?.finishedAt).toBe(before?.finishedAt);
    const ran = (before?.finishedAt as number) - (before?.startedAt as number);
    expect(jsonLines(again.stdout).at(-1)).toMatchObject({ type: 'summary', state: 'done', durationMs: ran });
    // Printed plainly, its two outputs are far more than a pipe holds: a reader that leaves after
    // the first byte (below) is gone while they are still being written.
    const plain = await gaxx(['run', '--resume', runId]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout.length).toBeGreaterThanOrEqual(2 * 200_000);
    // Its reader goes away after the first byte, as `| head -c 1` does: a stop asked of an ended run.
    for (const json of [['--json'], []]) {
      const cut = await runGaxx(['run', '--resume', runId, ...json], { home, env: env(), redirect: '| head -c 1 >/dev/null' });
      expect(cut.code, cut.stderr).toBe(0);
      expect(cut.stderr).not.toMatch(/cancelled|cancelling/);
      expect(cut.stderr).toContain('gaxx: stdout was closed (its reader went away): every task already has its result: nothing to cancel');
      expect(await cancelFlag(runId)).toBe(false);
      expect(await record(runId)).toMatchObject({ state: 'done', counts: { succeeded: 2 }, finishedAt: before?.finishedAt });
    }
    const r = await gaxx(['runs', 'wait', runId, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonLines(r.stdout).at(-1)).toMatchObject({ type: 'summary', state: 'done', succeeded: 2, durationMs: ran });
  }, 240_000);

  it.each([
    ['gaxx run', false],
    ['gaxx run --resume', true],
  ])(
    '%s whose reader leaves only after the summary, its results still unwritten in its buffer: names the stop (nothing to cancel), the run stays done',
    async (_what, resume) => {
      const dir = markerDir('gxro-late');
      dirs.push(dir);
      const errFile = join(dir, 'stderr');
      const each = ['--agent', agents.map((a) => a.address).join(','), '--', 'sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x'];
      let args = ['run', ...each];
      if (resume) {
        const first = await gaxx(['run', '--json', ...each]);
        expect(first.code, first.stderr).toBe(0);
        args = ['run', '--resume', jsonLines(first.stdout)[0]?.runId as string];
      }
      // The reader reads nothing (a pipe holds 64 KiB of the 400 KB) and leaves once the summary
      // is on stderr (at most 30 s): what the run printed after that waits in its own buffer.
      const reader = `(i=0; while [ $i -lt 600 ] && ! grep -q ' succeeded, ' '${errFile}'; do sleep 0.05; i=$((i+1)); done)`;
      await runGaxx(args, { home, env: env(), redirect: `2>'${errFile}' | ${reader}` });
      const stderr = readFileSync(errFile, 'utf8');
      expect(stderr).toMatch(/2 tasks: 2 succeeded, /);
      expect(stderr).toContain('gaxx: stdout was closed (its reader went away): every task already has its result: nothing to cancel');
      expect(stderr).not.toMatch(/cancelling|cancelled/);
      const runId = /gaxx: run (\S+)\n/.exec(stderr)?.[1] as string;
      expect(await cancelFlag(runId)).toBe(false);
      expect(await record(runId)).toMatchObject({ state: 'done', counts: { succeeded: 2 } });
    },
    240_000,
  );

  it.each([
    ['one task per host', false],
    ['a task list', true],
  ])(
    '`gaxx run --json | head -c 1` once every task has its result (%s): says nothing is cancelled, not "cancelling", and the run stays done',
    async (_what, list) => {
      const big = ['sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x'];
      let args = ['run', '--json', '--agent', agents[0]?.address as string, '--', ...big];
      if (list) {
        const dir = markerDir('gxro-list');
        dirs.push(dir);
        writeFileSync(join(dir, 'one.txt'), 'one\n');
        args = ['run', '--json', '--agent', agents[0]?.address as string, '--tasks', join(dir, 'one.txt'), '--', ...big];
      }
      // The run line goes first; the reader is gone before the one result (over a pipe's buffer) is all written.
      const r = await runGaxx(args, { home, env: env(), redirect: '| head -c 1 >/dev/null' });
      expect(r.stderr).not.toMatch(/cancelling|cancelled/);
      expect(r.stderr).toContain('gaxx: stdout was closed (its reader went away): every task already has its result: nothing to cancel');
      // Newest first: the run just made.
      const runId = (JSON.parse((await gaxx(['runs', '--json'])).stdout) as RunRecord[])[0]?.runId as string;
      expect(await cancelFlag(runId)).toBe(false);
      expect(await record(runId)).toMatchObject({ state: 'done', counts: { succeeded: 1 } });
    },
    120_000,
  );

  it('`runs cancel` of a task list its gaxx run still reads from an idle pipe: that gaxx run stops and exits 130 without its input ending', async () => {
    const reading = spawnGaxx(['run', '--json', '--agent', agents.map((a) => a.address).join(','), '--tasks', '-', '--', 'echo', '{}'], {
      home,
      env: env(),
      stdin: 'pipe',
    });
    try {
      reading.child.stdin?.write('first\n');
      await reading.line('stdout', (l) => l.includes('"type":"task"'));
      const runId = jsonLines(reading.stdout())[0]?.runId as string;
      // Every task so far has its result, but more of the list may come: the run is cancelled.
      const c = await gaxx(['runs', 'cancel', runId, '--json']);
      expect(c.code, c.stderr).toBe(0);
      expect(JSON.parse(c.stdout)).toMatchObject({ runId, cancelled: true });
      // The pipe stays open and idle (no more input, no end): the run ends all the same.
      const ended = await reading.done;
      expect(ended.code, ended.stderr).toBe(130);
      expect(jsonLines(ended.stdout).at(-1)).toMatchObject({ type: 'summary', state: 'cancelled', succeeded: 1 });
      expect(await record(runId)).toMatchObject({ state: 'cancelled' });
    } finally {
      reading.child.stdin?.end();
    }
  }, 120_000);

  it('`runs cancel` of a run whose tasks all have results, its gaxx run killed before recording its end, says it ended and changes nothing', async () => {
    const daemon = spawn(['scheduler', '--metrics-listen', '127.0.0.1:0']);
    try {
      await daemon.line('stderr', (l) => l.includes('"scheduler started"'));
      const m = marks();
      const gate = taskGate();
      const runId = await killedRun([], gate.wait, m, 2);
      gate.open();
      // The daemon publishes both results; nobody has looked at the run since (its record says running).
      await vi.waitFor(async () => expect(await doneCount(runId)).toBe(2), { timeout: 60_000, interval: 200 });
      gate.remove();
      expect(await record(runId)).toMatchObject({ state: 'running' });
      const c = await gaxx(['runs', 'cancel', runId, '--json']);
      expect(c.code, c.stderr).toBe(0);
      expect(JSON.parse(c.stdout)).toMatchObject({ runId, cancelled: false, state: 'done' });
      expect(await cancelFlag(runId)).toBe(false);
      const r = await gaxx(['runs', 'wait', runId, '--json', '--wait-timeout', '55s']);
      expect(r.code, r.stderr).toBe(0);
      expect(jsonLines(r.stdout).at(-1)).toMatchObject({ type: 'summary', state: 'done', succeeded: 2, cancelled: 0 });
      expect(await record(runId)).toMatchObject({ state: 'done', counts: { succeeded: 2 } });
    } finally {
      daemon.kill('SIGTERM');
      await daemon.done;
    }
  }, 240_000);

  it('`runs cancel` of an interrupted run whose enqueued tasks all ended leaves it interrupted (exit 12, not 130)', async () => {
    const run = spawnGaxx(['run', '--json', '--tasks', '-', '--agent', agents.map((a) => a.address).join(','), '--', 'echo'], {
      home,
      env: env(),
      stdin: 'pipe',
    });
    // Two records, and the input left open: the rest of it is never read.
    run.child.stdin?.write('one\ntwo\n');
    await vi.waitFor(() => expect(jsonLines(run.stdout()).filter((x) => x.type === 'task')).toHaveLength(2), { timeout: 60_000, interval: 100 });
    const runId = jsonLines(run.stdout())[0]?.runId as string;
    run.kill('SIGKILL');
    await run.done;
    const first = await gaxx(['runs', 'wait', runId, '--json', '--wait-timeout', '55s']);
    expect(first.code, first.stderr).toBe(exitCodeFor('UNAVAILABLE'));
    expect(await record(runId)).toMatchObject({ state: 'interrupted' });
    const c = await gaxx(['runs', 'cancel', runId, '--json']);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout)).toMatchObject({ runId, cancelled: false, state: 'interrupted' });
    const r = await gaxx(['runs', 'wait', runId, '--json', '--wait-timeout', '55s']);
    expect(r.code, r.stderr).toBe(exitCodeFor('UNAVAILABLE'));
    expect(jsonLines(r.stdout).at(-1)).toMatchObject({ type: 'summary', state: 'interrupted', succeeded: 2 });
  }, 240_000);
});

/** A `gaxx run --json --tasks -` whose input stays open (more may come), once its first record has its result. */
async function readingRun(): Promise<{ run: GaxxProcess; runId: string }> {
  const run = spawnGaxx(['run', '--json', '--tasks', '-', '--agent', agents.map((a) => a.address).join(','), '--', 'echo', '{}'], {
    home,
    env: env(),
    stdin: 'pipe',
  });
  run.child.stdin?.write('first\n');
  await run.line('stdout', (l) => l.includes('"type":"task"'), 60_000);
  return { run, runId: jsonLines(run.stdout())[0]?.runId as string };
}

describe('`run --resume` of a task list its gaxx run still reads', () => {
  it('stopped by Ctrl-C once every task so far has its result: cancelled (130), never interrupted (12)', async () => {
    // Before, the resume ended on its own as soon as the tasks enqueued so far had results, and
    // called the run interrupted though its gaxx run was alive: a Ctrl-C raced that end.
    for (let i = 0; i < 3; i++) {
      const { run, runId } = await readingRun();
      try {
        const resume = spawn(['run', '--resume', runId, '--json']);
        await resume.line('stdout', (l) => l.includes('"type":"task"'), 60_000);
        resume.kill('SIGINT');
        const r = await resume.done;
        expect(r.stderr).not.toMatch(/interrupted:/);
        expect(r.code, r.stderr).toBe(exitCodeFor('CANCELLED'));
        expect(jsonLines(r.stdout).at(-1)).toMatchObject({ type: 'summary', state: 'cancelled' });
        // Its gaxx run, still alive, sees the cancel and stops reading.
        const ended = await run.done;
        expect(ended.code, ended.stderr).toBe(exitCodeFor('CANCELLED'));
        expect(await record(runId)).toMatchObject({ state: 'cancelled' });
      } finally {
        run.child.stdin?.end();
      }
    }
  }, 240_000);

  it('follows the tasks enqueued meanwhile and ends done with its gaxx run, not interrupted', async () => {
    const { run, runId } = await readingRun();
    try {
      const resume = spawn(['run', '--resume', runId, '--json']);
      await resume.line('stdout', (l) => l.includes('"type":"task"'), 60_000);
      run.child.stdin?.write('second\n');
      await resume.line('stdout', (l) => l.includes('second'), 60_000);
      run.child.stdin?.end();
      const r = await resume.done;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/interrupted/);
      const tasks = jsonLines(r.stdout).filter((x) => x.type === 'task');
      expect(tasks.map((t) => t.stdout)).toEqual(['first\n', 'second\n']);
      expect(jsonLines(r.stdout).at(-1)).toMatchObject({ type: 'summary', state: 'done', succeeded: 2 });
      expect((await run.done).code).toBe(0);
      expect(await record(runId)).toMatchObject({ state: 'done', total: 2, counts: { succeeded: 2 } });
    } finally {
      run.child.stdin?.end();
    }
  }, 240_000);
});

describe('a run whose gaxx run was killed while a daemon worked on it', () => {
  it('`gaxx runs` shows it done once every task has its result, though nobody waited for it', async () => {
    const daemon = spawn(['scheduler', '--metrics-listen', '127.0.0.1:0']);
    try {
      await daemon.line('stderr', (l) => l.includes('"scheduler started"'));
      const m = marks();
      const gate = taskGate();
      const runId = await killedRun([], gate.wait, m, 2);
      gate.open();
      // Bounded: the daemon publishes both results within seconds of the gate opening.
      await vi.waitFor(
        async () => {
          const listed = JSON.parse((await gaxx(['runs', '--json'])).stdout) as RunRecord[];
          expect(listed.find((x) => x.runId === runId)).toMatchObject({ state: 'done', counts: { succeeded: 2 } });
        },
        { timeout: 60_000, interval: 500 },
      );
      gate.remove();
      expect(await record(runId)).toMatchObject({ state: 'done', counts: { succeeded: 2 } });
    } finally {
      daemon.kill('SIGTERM');
      await daemon.done;
    }
  }, 240_000);
});
