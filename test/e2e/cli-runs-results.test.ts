// `gaxx runs wait ID --results DIR` and `gaxx run --resume ID --results DIR` complete the folder a
// run's own `gaxx run --results` left incomplete (its gaxx run killed while tasks were held): the
// built CLI, a daemon, real agents. The completed folder is the one an uninterrupted run of the
// same input writes (names, files, bytes; result.json modulo the run's id, hosts and times), the
// folders written before are left as they were; a folder of another run is refused (exit 5), and
// a run whose records expired too (exit 4), with nothing written.
import { lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import type { Cluster, Redis } from 'ioredis';
import { jsonLines, type GaxxProcess } from '../helpers/cli.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';
import { taskGate, type TaskGate } from '../helpers/gate.js';
import { eventually } from '../helpers/poll.js';
import { markerDir } from '../helpers/task-writable.js';
import { withRedisAt } from '../helpers/redis.js';

let w: CliWorld;
let tmp: string;
let daemon: GaxxProcess;

beforeAll(async () => {
  w = await cliWorld(2);
  tmp = w.scratch('gxrr-');
  // The daemon runs the tasks: a killed gaxx run takes none of them with it.
  daemon = await w.startDaemon();
});

afterAll(async () => {
  daemon?.kill('SIGTERM');
  await daemon?.done;
  await w?.close();
});

/**
 * Records 1, 5 and 6 are held at the gate; the others end at once. `dup` (1 and 3) and `x` (5
 * and 6) are repeated: record 3 ends first and takes `dup`, which record 1 takes from it once it
 * ends (the first record keeps the name, whichever ends first); the empty record and `..` are
 * named by their numbers.
 */
const RECORDS = ['dup', 'a/b', 'dup', '', 'x', 'x', '..', 'back\\slash'];
const HELD = ['1', '5', '6'];
const FOLDERS = ['\\#4', '\\#7', 'a\\_b', 'back\\\\slash', 'dup', 'dup\\#3', 'x', 'x\\#6'].sort();

/** The task-list command: records HELD wait at the gate; every task writes to stdout and stderr. */
function listCommand(gate: TaskGate): string[] {
  const script = `case "$2" in ${HELD.join('|')}) ${gate.wait};; esac; printf 'got %s\\n' "$1"; echo "err $2" >&2`;
  return ['sh', '-c', script, '_', '{}', '{#}'];
}

function listFile(): string {
  const file = join(tmp, 'records.txt');
  writeFileSync(file, RECORDS.map((r) => `${r}\n`).join(''));
  return file;
}

/** What a folder's files are, to tell it was left as it was: its inode and each file's inode and mtime. */
interface Snapshot {
  ino: number;
  files: Record<string, { ino: number; mtimeMs: number }>;
}

/** Each folder of DIR/1 by the task in it (its seq). */
function snapshot(dir: string): Map<string, Snapshot> {
  const got = new Map<string, Snapshot>();
  for (const name of readdirSync(join(dir, '1'))) {
    if (name.startsWith('.')) continue;
    const folder = join(dir, '1', name);
    const files: Snapshot['files'] = {};
    for (const f of readdirSync(folder)) {
      const st = statSync(join(folder, f));
      files[f] = { ino: st.ino, mtimeMs: st.mtimeMs };
    }
    got.set(readFileSync(join(folder, 'seq'), 'utf8'), { ino: lstatSync(folder).ino, files });
  }
  return got;
}

/** A result.json with what differs from run to run (the run's id, where and when the task ran) made the same. */
function normalized(text: string): string {
  const r = JSON.parse(text) as Record<string, unknown>;
  // Written as gaxx writes it: 2-space JSON and a newline.
  expect(text).toBe(`${JSON.stringify(r, null, 2)}\n`);
  for (const k of ['runId', 'host', 'startedOn', 'durationMs', 'finishedAt']) if (k in r) r[k] = k;
  return JSON.stringify(r, null, 2);
}

/** DIR as a reference run wrote it, and DIR as completed: the same folders, each with the same files and bytes. */
function expectSameFolders(dir: string, reference: string): void {
  const names = readdirSync(join(dir, '1')).sort();
  expect(names).toEqual(readdirSync(join(reference, '1')).sort());
  for (const name of names) {
    const [a, b] = [join(dir, '1', name), join(reference, '1', name)];
    expect(readdirSync(a).sort(), name).toEqual(['result.json', 'seq', 'stderr', 'stdout']);
    expect(readdirSync(b).sort(), name).toEqual(['result.json', 'seq', 'stderr', 'stdout']);
    for (const f of ['seq', 'stdout', 'stderr']) expect(readFileSync(join(a, f)), `${name}/${f}`).toEqual(readFileSync(join(b, f)));
    expect(normalized(readFileSync(join(a, 'result.json'), 'utf8')), `${name}/result.json`).toBe(normalized(readFileSync(join(b, 'result.json'), 'utf8')));
  }
}

/** The folders written before were left as they were: each task's folder (wherever its name put it now), its files. */
function expectUntouched(dir: string, before: Map<string, Snapshot>): void {
  const after = snapshot(dir);
  for (const [seq, was] of before) expect(after.get(seq), `task ${seq.trim()}`).toEqual(was);
}

/** A run's id, from the first line of its human output on stderr. */
async function runIdOf(run: GaxxProcess): Promise<string> {
  const line = await run.line('stderr', (l) => l.startsWith('gaxx: run '));
  return line.slice('gaxx: run '.length).trim();
}

/**
 * A task-list run with --results DIR whose gaxx run is killed (SIGKILL) while records 1, 5 and 6
 * are held, once the others' folders are written; a temp folder as a writer killed mid-write
 * leaves it is added. Returns the run, its DIR, what DIR held, and the (still shut) gate.
 */
async function killedListRun(label: string): Promise<{ runId: string; dir: string; before: Map<string, Snapshot>; gate: TaskGate }> {
  const gate = taskGate();
  const dir = join(tmp, `${label}-results`);
  const run = w.spawnGaxx(['run', '--fleet', w.fleet, '--tasks', listFile(), '--results', dir, '--', ...listCommand(gate)]);
  const runId = await runIdOf(run);
  const fast = RECORDS.length - HELD.length;
  expect(await eventually(() => readdirSync(join(dir, '1')).filter((n) => !n.startsWith('.')).length === fast, 60_000)).toBe(true);
  run.kill('SIGKILL');
  await run.done;
  const before = snapshot(dir);
  // Record 3 holds `dup` for now: record 1, held, has no folder yet.
  expect(readFileSync(join(dir, '1', 'dup', 'seq'), 'utf8')).toBe('3\n');
  expect([...before.keys()].sort()).toEqual(['2\n', '3\n', '4\n', '7\n', '8\n']);
  mkdirSync(join(dir, '1', '.gaxx-5-0123456789ab.tmp'));
  writeFileSync(join(dir, '1', '.gaxx-5-0123456789ab.tmp', 'seq'), '5\n');
  return { runId, dir, before, gate };
}

let referenceDir: string | undefined;
/** The folder an uninterrupted run of the same list writes (its tasks held by no gate). */
async function reference(): Promise<string> {
  if (referenceDir) return referenceDir;
  const gate = taskGate();
  gate.open();
  const dir = join(tmp, 'reference-results');
  const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', listFile(), '--results', dir, '--', ...listCommand(gate)]);
  gate.remove();
  expect(r.code, r.stderr).toBe(0);
  expect(readdirSync(join(dir, '1')).sort()).toEqual(FOLDERS);
  referenceDir = dir;
  return dir;
}

const withRedis = <T>(fn: (redis: Redis | Cluster) => Promise<T>): Promise<T> => withRedisAt(w.redis.url, fn);

describe('--results of runs wait and run --resume: a run whose gaxx run was killed', () => {
  it(
    '`runs wait ID --results DIR` writes the missing folders as the run would have (the first record takes its name back), keeps those there',
    { timeout: 180_000 },
    async () => {
      const { runId, dir, before, gate } = await killedListRun('wait');
      gate.open();
      const r = await w.gaxx(['runs', 'wait', runId, '--results', dir, '--json']);
      gate.remove();
      expect(r.code, r.stderr).toBe(0);
      expect(jsonLines(r.stdout).at(-1)).toMatchObject({ type: 'summary', total: 8, succeeded: 8 });
      expect(jsonLines(r.stdout).at(-1)).not.toHaveProperty('resultsNotWritten');
      // Every record's folder, named as the run names them: record 1 took `dup` back from record 3.
      expect(readdirSync(join(dir, '1')).sort()).toEqual(FOLDERS);
      expect(readFileSync(join(dir, '1', 'dup', 'seq'), 'utf8')).toBe('1\n');
      expect(readFileSync(join(dir, '1', 'dup\\#3', 'seq'), 'utf8')).toBe('3\n');
      expect(readFileSync(join(dir, '1', 'dup', 'stdout'), 'utf8')).toBe('got dup\n');
      expectUntouched(dir, before);
      expectSameFolders(dir, await reference());
      // Done again: every folder is there, none is written again.
      const complete = snapshot(dir);
      const again = await w.gaxx(['runs', 'wait', runId, '--results', dir, '--json']);
      expect(again.code, again.stderr).toBe(0);
      expectUntouched(dir, complete);
      expectSameFolders(dir, await reference());
    },
  );

  it('`run --resume ID --results DIR` does the same', { timeout: 180_000 }, async () => {
    const { runId, dir, before, gate } = await killedListRun('resume');
    gate.open();
    const r = await w.gaxx(['run', '--resume', runId, '--results', dir]);
    gate.remove();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/8 tasks: 8 succeeded/);
    expect(readdirSync(join(dir, '1')).sort()).toEqual(FOLDERS);
    expectUntouched(dir, before);
    expectSameFolders(dir, await reference());
  });

  it('a new DIR gets every folder, as the run wrote them', async () => {
    const gate = taskGate();
    gate.open();
    const run = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', listFile(), '--json', '--', ...listCommand(gate)]);
    gate.remove();
    expect(run.code, run.stderr).toBe(0);
    const runId = jsonLines(run.stdout)[0]?.runId as string;
    const dir = join(tmp, 'new-results');
    const r = await w.gaxx(['runs', 'wait', runId, '--results', dir]);
    expect(r.code, r.stderr).toBe(0);
    expectSameFolders(dir, await reference());
  });
});

describe('--results DIR: one writer at a time', () => {
  it(
    'a completion of a DIR whose gaxx run still writes it is refused (FAILED_PRECONDITION, its pid), nothing touched; the run then ends whole',
    { timeout: 180_000 },
    async () => {
      const gate = taskGate();
      const dir = join(tmp, 'live-results');
      const run = w.spawnGaxx(['run', '--fleet', w.fleet, '--tasks', listFile(), '--results', dir, '--', ...listCommand(gate)]);
      const runId = await runIdOf(run);
      const fast = RECORDS.length - HELD.length;
      expect(await eventually(() => readdirSync(join(dir, '1')).filter((n) => !n.startsWith('.')).length === fast, 60_000)).toBe(true);
      // The writer's claim is there while it runs.
      expect(readdirSync(dir).sort()).toEqual(['.gaxx-writer', '1']);
      const before = snapshot(dir);
      // Bounded waits: a completion that went on would wait for the held records, not refuse.
      for (const args of [
        ['runs', 'wait', runId, '--results', dir, '--wait-timeout', '5s'],
        ['run', '--resume', runId, '--results', dir, '--wait-timeout', '5s'],
      ]) {
        const r = await w.gaxx(args);
        expect(r.code, r.stderr).toBe(exitCodeFor('FAILED_PRECONDITION'));
        expect(r.stderr).toContain(`another gaxx (pid ${run.pid}) is writing results into '${dir}'`);
        expectUntouched(dir, before);
        expect(readdirSync(join(dir, '1')).filter((n) => !n.startsWith('.')).length).toBe(fast);
      }
      // A new run into it: not empty.
      const again = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', listFile(), '--results', dir, '--', 'true']);
      expect(again.code, again.stderr).toBe(exitCodeFor('ALREADY_EXISTS'));
      gate.open();
      const { code } = await run.done;
      gate.remove();
      expect(code).toBe(0);
      // It wrote every folder, as an uninterrupted run does, and its claim went with it.
      expect(readdirSync(dir)).toEqual(['1']);
      expectSameFolders(dir, await reference());
    },
  );
});

describe('--results of runs wait and run --resume: refused, nothing written', () => {
  it("a DIR of another run's folders, or with other files, is ALREADY_EXISTS (exit 5)", async () => {
    const file = join(tmp, 'two.txt');
    writeFileSync(file, 'p\nq\n');
    const theirs = join(tmp, 'theirs-results');
    const a = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', file, '--results', theirs, '--', 'echo', '{}']);
    expect(a.code, a.stderr).toBe(0);
    const b = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', file, '--json', '--', 'echo', '{}']);
    expect(b.code, b.stderr).toBe(0);
    const runB = jsonLines(b.stdout)[0]?.runId as string;
    const before = snapshot(theirs);
    for (const args of [
      ['runs', 'wait', runB, '--results', theirs],
      ['run', '--resume', runB, '--results', theirs],
    ]) {
      const r = await w.gaxx(args);
      expect(r.code, r.stderr).toBe(exitCodeFor('ALREADY_EXISTS'));
      expect(r.stderr).toContain(`holds what run ${runB}'s --results did not write`);
      expect(r.stderr).toMatch(/is run \S+'s/);
      expect(readdirSync(join(theirs, '1')).sort()).toEqual(['p', 'q']);
      expectUntouched(theirs, before);
    }
    // A file of someone's beside 1/, or in it.
    const odd = join(tmp, 'odd-results');
    mkdirSync(odd);
    writeFileSync(join(odd, 'notes.txt'), 'mine\n');
    const inOne = join(tmp, 'odd-in-one');
    mkdirSync(join(inOne, '1'), { recursive: true });
    writeFileSync(join(inOne, '1', 'p'), 'mine\n');
    for (const [dir, entries] of [
      [odd, ['notes.txt']],
      [inOne, ['1']],
    ] as const) {
      const r = await w.gaxx(['runs', 'wait', runB, '--results', dir]);
      expect(r.code, r.stderr).toBe(exitCodeFor('ALREADY_EXISTS'));
      expect(readdirSync(dir)).toEqual(entries);
    }
    expect(readdirSync(join(inOne, '1'))).toEqual(['p']);
  });

  it('a run whose records (task list) or hosts (one task per host) expired: NOT_FOUND (exit 4), said so; DIR not made', async () => {
    const file = join(tmp, 'one.txt');
    writeFileSync(file, 'r1\n');
    const list = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', file, '--json', '--', 'echo', '{}']);
    const each = await w.gaxx(['run', '--fleet', w.fleet, '--json', '--', 'echo', 'hi']);
    for (const [run, key] of [
      [list, 'records'],
      [each, 'tasks'],
    ] as const) {
      expect(run.code, run.stderr).toBe(0);
      const runId = jsonLines(run.stdout)[0]?.runId as string;
      await withRedis((redis) => redis.del(`{gaxx}:run:${runId}:${key}`));
      const dir = join(tmp, `expired-${key}`);
      for (const args of [
        ['runs', 'wait', runId, '--results', dir],
        ['run', '--resume', runId, '--results', dir],
      ]) {
        const r = await w.gaxx(args);
        expect(r.code, r.stderr).toBe(exitCodeFor('NOT_FOUND'));
        expect(r.stderr).toContain('no longer kept');
        expect(() => statSync(dir)).toThrow();
      }
    }
  });
});

describe('--results of runs wait: a run of one task per host', () => {
  it('completes the folder its killed gaxx run left, as an uninterrupted run writes it', { timeout: 180_000 }, async () => {
    const gate = taskGate();
    const marks = markerDir('gxrr');
    // The first task to start ends at once, the other waits at the gate.
    const command = ['sh', '-c', `mkdir '${marks}/first' 2>/dev/null || { ${gate.wait}; }; echo hi; echo err >&2`];
    const dir = join(tmp, 'each-results');
    const run = w.spawnGaxx(['run', '--fleet', w.fleet, '--results', dir, '--', ...command]);
    const runId = await runIdOf(run);
    expect(await eventually(() => readdirSync(join(dir, '1')).filter((n) => !n.startsWith('.')).length === 1, 60_000)).toBe(true);
    run.kill('SIGKILL');
    await run.done;
    const before = snapshot(dir);
    gate.open();
    const r = await w.gaxx(['runs', 'wait', runId, '--results', dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(dir, '1')).sort()).toEqual(['h1', 'h2']);
    expectUntouched(dir, before);
    // An uninterrupted run of the same command (its marker is there: both wait at the open gate).
    const reference = join(tmp, 'each-reference');
    const ref = await w.gaxx(['run', '--fleet', w.fleet, '--results', reference, '--', ...command]);
    gate.remove();
    expect(ref.code, ref.stderr).toBe(0);
    expectSameFolders(dir, reference);
    expect(readFileSync(join(dir, '1', 'h1', 'seq'), 'utf8')).toBe('0-h1\n');
  });
});
