// The built CLI's `gaxx run --tasks` with records that cannot become tasks (not UTF-8, a NUL
// byte, over 131071 bytes, an empty command) among good ones, and CRLF input, against real agents.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { jsonLines } from '../helpers/cli.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';

let w: CliWorld;
let tmp: string;

beforeAll(async () => {
  w = await cliWorld(2);
  tmp = w.scratch('gxr-');
});

afterAll(async () => {
  await w?.close();
});

type Line = Record<string, unknown>;
const tasksOf = (stdout: string): Line[] => jsonLines(stdout).filter((l) => l.type === 'task');
const byId = (tasks: Line[]): Map<number, Line> => new Map(tasks.map((t) => [Number(t.taskId), t]));

describe('gaxx run --tasks: records that cannot become tasks', () => {
  it('are reported as refused with their numbers, never run nor changed; every other record runs once; exit 1', { timeout: 300_000 }, async () => {
    // 300 good lines, then a non-UTF-8 line, a NUL line, an over-long line in the middle of the
    // stream (after tasks have run: --concurrency 20), and 300 more good lines.
    const good = (i: number): string => `item-${i}`;
    const lines: Buffer[] = [];
    for (let i = 1; i <= 300; i++) lines.push(Buffer.from(good(i)));
    lines.push(Buffer.from([0x63, 0x61, 0x66, 0xe9])); // 301: caf\xe9
    lines.push(Buffer.from('nul\0byte')); // 302
    lines.push(Buffer.alloc(200_000, 65)); // 303
    for (let i = 304; i <= 603; i++) lines.push(Buffer.from(good(i)));
    const file = join(tmp, 'mixed.txt');
    writeFileSync(file, Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')])));
    const results = join(tmp, 'mixed-results');
    const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', file, '--concurrency', '20', '--json', '--results', results, '--', 'echo', '{}']);
    expect(r.code, r.stderr).toBe(1);
    const all = jsonLines(r.stdout);
    expect(all[0]).toMatchObject({ type: 'run' });
    expect(all.at(-1)).toMatchObject({ type: 'summary', total: 603, succeeded: 600, failed: 0, unknown: 0, cancelled: 0, refused: 3, state: 'done' });
    expect(all.at(-1)).not.toHaveProperty('notEnqueuedFrom');
    const tasks = byId(tasksOf(r.stdout));
    expect(tasks.size).toBe(603);
    expect(tasksOf(r.stdout)).toHaveLength(603);
    for (const n of [301, 302, 303]) {
      expect(tasks.get(n), String(n)).toMatchObject({ outcome: 'refused', reason: 'INVALID_ARGUMENT', host: '', attempts: 0, startedOn: [] });
      expect(tasks.get(n)?.error).toContain(`record ${n} `);
    }
    // The NUL record is kept as it was (for the report), the others have no text to show.
    expect(tasks.get(302)?.input).toBe('nul\0byte');
    expect(tasks.get(301)).not.toHaveProperty('input');
    for (const [n, t] of tasks) if (n < 301 || n > 303) expect(t, String(n)).toMatchObject({ outcome: 'succeeded', input: good(n), stdout: `${good(n)}\n` });
    // --results: one folder per record; the refused ones under their number, with their result.
    expect(readdirSync(join(results, '1'))).toHaveLength(603);
    const refused = JSON.parse(readFileSync(join(results, '1', '\\#301', 'result.json'), 'utf8')) as Line;
    expect(refused).toMatchObject({ taskId: '301', outcome: 'refused', reason: 'INVALID_ARGUMENT' });
    expect(JSON.parse(readFileSync(join(results, '1', 'nul\\0byte', 'result.json'), 'utf8'))).toMatchObject({ outcome: 'refused' });
    // The run as stored: `runs wait` reports the refusals too, with the same exit code.
    const runId = all[0]?.runId as string;
    const again = await w.gaxx(['runs', 'wait', runId, '--json']);
    expect(again.code, again.stderr).toBe(1);
    expect(jsonLines(again.stdout).at(-1)).toMatchObject({ type: 'summary', total: 603, refused: 3, succeeded: 600, state: 'done' });
  });

  it('a record, or an argument {} makes, of 131071 bytes runs; one of 131072 (Linux counts the NUL in its 128 KiB) is refused, never run', async () => {
    const rec = (n: number, c: string): string => c.repeat(n);
    const input = Buffer.from([rec(131_071, 'a'), rec(131_072, 'b'), rec(131_070, 'c'), rec(131_071, 'd')].join('\n') + '\n');
    // Record 1 and 2 as the argument itself; 3 and 4 inside a word (x{}): arguments of 131071 and 131072 bytes.
    const count = ['sh', '-c', 'printf %s "$1" | wc -c', '_'];
    const whole = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--json', '--', ...count, '{}'], { input: input.subarray(0, 262_145) });
    const inWord = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--json', '--', ...count, 'x{}'], { input: input.subarray(262_145) });
    for (const r of [whole, inWord]) {
      expect(r.code, r.stderr).toBe(1);
      const tasks = byId(tasksOf(r.stdout));
      expect(tasks.get(1)).toMatchObject({ outcome: 'succeeded', stdout: expect.stringMatching(/^\s*131071\n$/) });
      // Refused before queueing (as its own outcome), not failed on the agent with E2BIG (exit 126).
      expect(tasks.get(2)).toMatchObject({ outcome: 'refused', reason: 'INVALID_ARGUMENT', attempts: 0, startedOn: [] });
      expect(tasks.get(2)?.error).toContain('131071 bytes');
      expect(jsonLines(r.stdout).at(-1)).toMatchObject({ type: 'summary', total: 2, succeeded: 1, failed: 0, refused: 1 });
    }
  });

  it("a record starting with '-' that would begin an option is refused; as a shell script's argument it runs as data", async () => {
    const input = Buffer.from('host-1\n-oProxyCommand=touch /tmp/gaxx-pwned\n');
    const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--json', '--', 'echo', '{}'], { input });
    expect(r.code, r.stderr).toBe(1);
    const tasks = byId(tasksOf(r.stdout));
    expect(tasks.get(1)).toMatchObject({ outcome: 'succeeded', stdout: 'host-1\n' });
    expect(tasks.get(2)).toMatchObject({ outcome: 'refused', reason: 'INVALID_ARGUMENT', attempts: 0, startedOn: [] });
    expect(tasks.get(2)?.error).toMatch(/^record 2 starts with '-'/);
    const ok = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--json', '--', 'sh', '-c', 'printf "%s\\n" "$1"', '_', '{}'], { input });
    expect(ok.code, ok.stderr).toBe(0);
    expect(byId(tasksOf(ok.stdout)).get(2)).toMatchObject({ outcome: 'succeeded', stdout: '-oProxyCommand=touch /tmp/gaxx-pwned\n' });
  });

  it("a wrapper's -- does not keep a record from being the option of the program after it: refused before anything runs", async () => {
    // Before, `env -- perl {}` ran perl -e with this record's code, and `env -- ssh {} true` its ProxyCommand.
    const records = ['-eprint "ran ", 6*7, "\\n"', '-oProxyCommand=sh -c "echo ran-$((6*7)) >&2"'];
    for (const cmd of [
      ['env', '--', 'perl', '{}'],
      ['nice', '--', 'perl', '{}'],
      ['timeout', '--', '30', 'perl', '{}'],
      ['env', '--', 'ssh', '{}', 'true'],
      ['timeout', '--', '30', 'ssh', '{}', 'true'],
    ]) {
      const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--json', '--', ...cmd], { input: Buffer.from(records.join('\n')) });
      expect(r.code, `${cmd.join(' ')}: ${r.stderr}`).toBe(1);
      const tasks = byId(tasksOf(r.stdout));
      for (const n of [1, 2]) {
        expect(tasks.get(n), `${cmd.join(' ')} [${n}]`).toMatchObject({ outcome: 'refused', reason: 'INVALID_ARGUMENT', attempts: 0, startedOn: [] });
        expect(tasks.get(n)?.error).toMatch(new RegExp(`^record ${n} starts with '-'`));
      }
      expect(r.stdout).not.toMatch(/ran[ -]42/);
      expect(jsonLines(r.stdout).at(-1)).toMatchObject({ type: 'summary', total: 2, refused: 2, succeeded: 0, failed: 0 });
    }
    // Behind the same wrapper, the program's own -- (or a shell script's argument) keeps the record data.
    const ok = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--json', '--', 'env', '--', 'sh', '-c', 'printf "[%s]" "$1"', '_', '{}'], {
      input: Buffer.from(records[0] as string),
    });
    expect(ok.code, ok.stderr).toBe(0);
    expect(byId(tasksOf(ok.stdout)).get(1)).toMatchObject({ outcome: 'succeeded', stdout: `[${records[0] as string}]` });
  });

  it('human output names each refused record; the summary counts them; stdin and -0 go through the same checks', async () => {
    const input = Buffer.concat([Buffer.from('a\n'), Buffer.from([0xff, 0xfe]), Buffer.from('\nb\n')]);
    const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--', 'echo', '{}'], { input });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^== - \[2\]: refused \(INVALID_ARGUMENT, .*record 2 /m);
    expect(r.stdout).toMatch(/\[1\]: a$/m);
    expect(r.stdout).toMatch(/\[3\]: b$/m);
    expect(r.stderr).toMatch(/3 tasks: 2 succeeded, 0 failed, 0 timed out, 0 unknown, 1 refused in /);
    // -0: a non-UTF-8 record and an empty command ({} as argv[0] with an empty record).
    const z = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '-', '-0', '--json', '--', '{}', 'x'], {
      input: Buffer.concat([Buffer.from([0x63, 0x61, 0x66, 0xe9, 0]), Buffer.from('\0echo\0')]),
    });
    expect(z.code, z.stderr).toBe(1);
    const tasks = byId(tasksOf(z.stdout));
    expect([...tasks.keys()].sort()).toEqual([1, 2, 3]);
    expect(tasks.get(1)).toMatchObject({ outcome: 'refused', reason: 'INVALID_ARGUMENT' });
    expect(tasks.get(2)).toMatchObject({ outcome: 'refused', reason: 'INVALID_ARGUMENT', input: '' });
    expect(tasks.get(3)).toMatchObject({ outcome: 'succeeded', stdout: 'x\n' });
    // Only refusals: still a run with a result per record and a summary, exit 1 (not 2, not 12).
    const only = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--json', '--', 'echo', '{}'], { input: Buffer.from([0xc3, 0x28, 0x0a]) });
    expect(only.code, only.stderr).toBe(1);
    expect(jsonLines(only.stdout).at(-1)).toMatchObject({ type: 'summary', total: 1, refused: 1, state: 'done' });
    expect(exitCodeFor('UNAVAILABLE')).not.toBe(1);
  });

  it('CRLF input: the \\r ending each line is not part of the record, in the task, JSON or --results; blank lines are records', async () => {
    const file = join(tmp, 'crlf.txt');
    writeFileSync(file, 'a\r\n\r\nb c\r\nd\r\n');
    const results = join(tmp, 'crlf-results');
    const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', file, '--json', '--results', results, '--', 'printf', '[%s]', '{}']);
    expect(r.code, r.stderr).toBe(0);
    const tasks = byId(tasksOf(r.stdout));
    expect([...tasks.entries()].sort(([x], [y]) => x - y).map(([, t]) => [t.input, t.stdout])).toEqual([
      ['a', '[a]'],
      ['', '[]'],
      ['b c', '[b c]'],
      ['d', '[d]'],
    ]);
    expect(readdirSync(join(results, '1')).sort()).toEqual(['\\#2', 'a', 'b c', 'd']);
    // A file whose first line ends in LF alone keeps a later \r as data.
    const lf = join(tmp, 'lf.txt');
    writeFileSync(lf, 'a\nb\r\n');
    const k = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', lf, '--json', '--', 'printf', '[%s]', '{}']);
    expect(k.code, k.stderr).toBe(0);
    expect(byId(tasksOf(k.stdout)).get(2)).toMatchObject({ input: 'b\r', stdout: '[b\r]' });
  });
});
