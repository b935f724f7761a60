// The built CLI's `gaxx run --results DIR` on a file system that fills up (a 1 MiB tmpfs), against
// real agents: a folder that cannot be written changes no task's outcome nor the run's record; the
// run goes on, says which folders were not written and how to get their results, and exits 3;
// `gaxx runs wait ID --results DIR` writes them once there is room.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { jsonLines } from '../helpers/cli.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';

let w: CliWorld;
let tmp: string;
let disk: string;
let mounted = false;

beforeAll(async () => {
  w = await cliWorld(2);
  tmp = w.scratch('gxf-');
  disk = join(tmp, 'disk');
  mkdirSync(disk, { mode: 0o700 });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', disk]);
  mounted = true;
});

afterAll(async () => {
  if (mounted) execFileSync('umount', [disk]);
  await w?.close();
});

type Line = Record<string, unknown>;
const BIG = 100_000;
/** A task that prints 100,000 bytes then `done-<record>`: ten such folders fill the disk. */
const BIG_TASK = ['sh', '-c', `head -c ${BIG} /dev/zero | tr '\\0' y; echo done-$1`, '_', '{}'];

/** The folders in DIR/1: every one whole (its four files, its stdout exact); no temp folder left. */
function wholeFolders(dir: string): string[] {
  const names = readdirSync(join(dir, '1'));
  expect(names.filter((n) => n.startsWith('.'))).toEqual([]);
  for (const n of names) {
    expect(readdirSync(join(dir, '1', n)).sort()).toEqual(['result.json', 'seq', 'stderr', 'stdout']);
    expect(readFileSync(join(dir, '1', n, 'stdout'), 'utf8')).toBe(`${'y'.repeat(BIG)}done-${n}\n`);
    expect(JSON.parse(readFileSync(join(dir, '1', n, 'result.json'), 'utf8'))).toMatchObject({ outcome: 'succeeded', input: n });
  }
  return names;
}

/** The run as `gaxx runs --json` and `gaxx runs show --json` give it. */
async function recorded(runId: string): Promise<{ listed: Line; results: Line[] }> {
  const list = await w.gaxx(['runs', '--json']);
  expect(list.code, list.stderr).toBe(0);
  const listed = (JSON.parse(list.stdout) as Line[]).find((x) => x.runId === runId) as Line;
  const show = await w.gaxx(['runs', 'show', runId, '--json']);
  expect(show.code, show.stderr).toBe(0);
  return { listed, results: (JSON.parse(show.stdout) as { results: Line[] }).results };
}

describe('gaxx run --results on a disk that fills up', () => {
  it(
    'every task keeps its outcome, the run goes on and is recorded done; the folders not written are counted and told once; exit 3',
    { timeout: 300_000 },
    async () => {
      const file = join(tmp, 't40.txt');
      writeFileSync(file, Array.from({ length: 40 }, (_, i) => `${i + 1}\n`).join(''));
      const results = join(disk, 'res');
      const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', file, '--json', '--results', results, '--', ...BIG_TASK]);
      expect(r.code, r.stderr).toBe(exitCodeFor('FILE_ACCESS'));
      const all = jsonLines(r.stdout);
      const runId = all[0]?.runId as string;
      const tasks = all.filter((l) => l.type === 'task');
      expect(tasks).toHaveLength(40);
      for (const t of tasks) expect(t).toMatchObject({ outcome: 'succeeded', stdout: `${'y'.repeat(BIG)}done-${t.taskId as string}\n` });
      const summary = all.at(-1) as Line;
      expect(summary).toMatchObject({ type: 'summary', total: 40, succeeded: 40, unknown: 0, state: 'done' });
      // What fitted was written whole; every other folder is counted, none half there.
      const written = wholeFolders(results);
      expect(written.length).toBeGreaterThan(0);
      expect(summary.resultsNotWritten).toBe(40 - written.length);
      // The failure is told once (the path of the first folder not written, its code), then counted.
      expect(r.stderr.split('[FILE_ACCESS]')).toHaveLength(2);
      expect(r.stderr).toContain(join(results, '1'));
      expect(r.stderr).toContain(`gaxx runs wait ${runId} --json`);
      // The run's record agrees with its results.
      const { listed, results: stored } = await recorded(runId);
      expect(listed).toMatchObject({ state: 'done', counts: { succeeded: 40 } });
      expect(stored).toHaveLength(40);
      expect(stored.every((x) => x.outcome === 'succeeded')).toBe(true);
    },
  );

  it(
    'human output: no task reported as anything but succeeded, the summary printed with the folders not written; each-host runs too',
    { timeout: 300_000 },
    async () => {
      // The disk is full by now: no folder of these runs fits.
      const file = join(tmp, 't5.txt');
      writeFileSync(file, '1\n2\n3\n4\n5\n');
      const results = join(disk, 'res-human');
      const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', file, '--results', results, '--', ...BIG_TASK]);
      expect(r.code, r.stderr).toBe(exitCodeFor('FILE_ACCESS'));
      expect(r.stdout).not.toMatch(/^== /m);
      expect(r.stdout.match(/done-\d/g)).toHaveLength(5);
      const runId = /gaxx: run (\S+)\n/.exec(r.stderr)?.[1] as string;
      expect(r.stderr).toMatch(/5 tasks: 5 succeeded, .*5 not written to --results/);
      expect(readdirSync(join(results, '1'))).toEqual([]);
      const { listed } = await recorded(runId);
      expect(listed).toMatchObject({ state: 'done', counts: { succeeded: 5 } });

      const each = join(disk, 'res-each');
      const e = await w.gaxx(['run', '--fleet', w.fleet, '--json', '--results', each, '--', 'sh', '-c', `head -c ${BIG} /dev/zero`]);
      expect(e.code, e.stderr).toBe(exitCodeFor('FILE_ACCESS'));
      const lines = jsonLines(e.stdout);
      expect(lines.filter((l) => l.type === 'task').every((t) => t.outcome === 'succeeded')).toBe(true);
      expect(lines.at(-1)).toMatchObject({ type: 'summary', total: 2, succeeded: 2, resultsNotWritten: 2, state: 'done' });
      expect(readdirSync(join(each, '1'))).toEqual([]);
    },
  );

  it(
    '`runs wait ID --results DIR` writes the folders the full disk kept out (exit 3 again while it is full), once there is room; those written stay as they were',
    { timeout: 300_000 },
    async () => {
      // Room for a few folders: what the runs above wrote is removed, a filler takes the rest.
      for (const d of readdirSync(disk)) rmSync(join(disk, d), { recursive: true, force: true });
      const filler = join(disk, 'filler');
      writeFileSync(filler, Buffer.alloc(640 * 1024));
      // Seven folders fit on the empty disk.
      const file = join(tmp, 't7.txt');
      writeFileSync(file, Array.from({ length: 7 }, (_, i) => `${i + 1}\n`).join(''));
      const results = join(disk, 'res-later');
      const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', file, '--json', '--results', results, '--', ...BIG_TASK]);
      expect(r.code, r.stderr).toBe(exitCodeFor('FILE_ACCESS'));
      const runId = jsonLines(r.stdout)[0]?.runId as string;
      const written = wholeFolders(results);
      const missing = 7 - written.length;
      expect(missing).toBeGreaterThan(0);
      expect(jsonLines(r.stdout).at(-1)).toMatchObject({ resultsNotWritten: missing });
      // The note says how to write them.
      expect(r.stderr).toContain(`gaxx runs wait ${runId} --results ${results} writes the missing folders`);
      const before = new Map(written.map((n) => [n, statSync(join(results, '1', n, 'stdout'))]));
      // Still full: the same accounting as gaxx run's, exit 3; nothing half there.
      const full = await w.gaxx(['runs', 'wait', runId, '--json', '--results', results]);
      expect(full.code, full.stderr).toBe(exitCodeFor('FILE_ACCESS'));
      expect(jsonLines(full.stdout).at(-1)).toMatchObject({ type: 'summary', total: 7, succeeded: 7, resultsNotWritten: missing });
      expect(full.stderr).toContain(`gaxx runs wait ${runId} --json`);
      expect(wholeFolders(results)).toEqual(written);
      rmSync(filler);
      const done = await w.gaxx(['runs', 'wait', runId, '--json', '--results', results]);
      expect(done.code, done.stderr).toBe(0);
      expect(jsonLines(done.stdout).at(-1)).not.toHaveProperty('resultsNotWritten');
      expect(wholeFolders(results).sort()).toEqual(['1', '2', '3', '4', '5', '6', '7']);
      for (const [n, st] of before) {
        const now = statSync(join(results, '1', n, 'stdout'));
        expect([now.ino, now.mtimeMs], n).toEqual([st.ino, st.mtimeMs]);
      }
    },
  );
});
