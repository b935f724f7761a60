// The built CLI's `gaxx run --tasks` against real agents in a registered fleet, on a real redis-server.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { createRedis, redisSettingsFromUrl, waitReady } from '../../scheduler/index.js';
import type { AgentProcess } from '../helpers/agent.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';
import { taskGate } from '../helpers/gate.js';

let w: CliWorld;
let tmp: string;

beforeAll(async () => {
  w = await cliWorld(3);
  tmp = w.scratch('gxt-');
});

afterAll(async () => {
  await w?.close();
});

type Line = Record<string, unknown>;
const jsonLines = (s: string): Line[] =>
  s
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Line);

/** What the queue holds: runs in the index and jobs by state (for "nothing enqueued"). */
async function queueFootprint(): Promise<{ runs: number; jobs: number }> {
  const redis = createRedis(redisSettingsFromUrl(w.redis.url), 'producer');
  try {
    await waitReady(redis);
    const runs = await redis.zcard('{gaxx}:runs');
    const keys = await redis.keys('{gaxx}:tasks:*');
    return { runs, jobs: keys.filter((k) => /:tasks:r[0-9a-z]+-/.test(k)).length };
  } finally {
    redis.disconnect();
  }
}

describe('gaxx run --tasks', () => {
  it('2,000 lines over 3 agents: 2,000 results, each line once, as run locally; --results has one folder per task', { timeout: 900_000 }, async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => `item ${i} ${'x'.repeat(i % 7)}`);
    const file = join(tmp, 'list.txt');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const results = join(tmp, 'results');
    const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', file, '--json', '--results', results, '--', 'echo', 'got', '{}']);
    // On a failure, the tasks that did not succeed (first 5) and the summary say which and why.
    const seen = r.stdout.split('\n').flatMap((l) => {
      try {
        return [JSON.parse(l) as Line];
      } catch {
        return [];
      }
    });
    const notOk = seen.filter((l) => l.type === 'task' && l.outcome !== 'succeeded').slice(0, 5);
    expect(r.code, `${r.stderr}\n${JSON.stringify([...notOk, seen.at(-1)])}`).toBe(0);
    const all = jsonLines(r.stdout);
    expect(all[0]).toMatchObject({ type: 'run', mode: 'tasks', fleet: w.fleet });
    expect(all.at(-1)).toMatchObject({ type: 'summary', runId: all[0]?.runId, total: 2000, succeeded: 2000, failed: 0, unknown: 0 });
    const tasks = all.filter((l) => l.type === 'task');
    expect(tasks).toHaveLength(2000);
    // The same command run locally, once per line.
    const local = execFileSync('xargs', ['-d', '\n', '-n1', 'echo', 'got'], { input: readFileSync(file) })
      .toString()
      .split('\n')
      .filter(Boolean)
      .sort();
    expect(tasks.map((t) => (t.stdout as string).replace(/\n$/, '')).sort()).toEqual(local);
    for (const t of tasks) expect(t.stdout).toBe(`got ${t.input as string}\n`);
    // Every agent pulled work.
    expect(new Set(tasks.map((t) => t.host))).toEqual(new Set(w.agents.map((a) => a.address)));
    const folders = readdirSync(join(results, '1'));
    expect(folders).toHaveLength(2000);
    for (const f of folders.slice(0, 50)) {
      const res = JSON.parse(readFileSync(join(results, '1', f, 'result.json'), 'utf8')) as Line;
      expect(readFileSync(join(results, '1', f, 'stdout'), 'utf8')).toBe(`got ${res.input as string}\n`);
      expect(res.outcome).toBe('succeeded');
    }
  });

  it('stdin, human output prefixed by host and task, failures reported, binary output exact in --results and base64 in --json', async () => {
    const input = 'a\nb\nfail\n';
    const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--', 'sh', '-c', 'echo "out $1"; [ "$1" != fail ]', '_', '{}'], { input });
    expect(r.code, r.stderr).toBe(1);
    // Labelled by the fleet's host names, as a per-host run's output is, not by agent addresses.
    const hosts = w.hosts.join('|');
    for (const [n, x] of [
      ['1', 'a'],
      ['2', 'b'],
      ['3', 'fail'],
    ])
      expect(r.stdout).toMatch(new RegExp(`^(${hosts}) \\[${n}\\]: out ${x}$`, 'm'));
    expect(r.stdout).toMatch(/\[3\]: failed \(exit 1/);
    expect(r.stderr).toMatch(/3 tasks: 2 succeeded, 1 failed, 0 timed out, 0 unknown/);
    // A task list queues as it reads: --timings shows when the first tasks were queued.
    const timed = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--timings', '--', 'true'], { input: 'x\ny\n' });
    expect(timed.code, timed.stderr).toBe(0);
    expect(timed.stderr).toMatch(
      /^gaxx: timings \(ms since start\): node up \d+, gaxx loaded \d+, redis \d+, enqueued \d+, first result \d+, last result \d+, done \d+; dispatched by this process$/m,
    );
    const results = join(tmp, 'bin');
    const b = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '-', '-0', '--json', '--results', results, '--', 'printf', '\\377\\000{}'], {
      input: 'x\0y/z\0',
    });
    expect(b.code, b.stderr).toBe(0);
    const tasks = jsonLines(b.stdout).filter((l) => l.type === 'task');
    expect(tasks.map((t) => [t.input, t.stdout, Buffer.from(t.stdoutBase64 as string, 'base64')])).toEqual(
      expect.arrayContaining([
        ['x', undefined, Buffer.from([0xff, 0, 0x78])],
        ['y/z', undefined, Buffer.from([0xff, 0, 0x79, 0x2f, 0x7a])],
      ]),
    );
    expect(readFileSync(join(results, '1', 'y\\_z', 'stdout'))).toEqual(Buffer.from([0xff, 0, 0x79, 0x2f, 0x7a]));
  });

  it('a host that is down is reported while the others complete', async () => {
    const live = w.agents.slice(0, 2).map((a: AgentProcess) => a.address);
    const lines = Array.from({ length: 30 }, (_, i) => String(i)).join('\n');
    const r = await w.gaxx(['run', '--agent', [...live, '127.0.0.1:1'].join(','), '--retries', '0', '--tasks', '-', '--json', '--', 'echo', '{}'], {
      input: lines,
    });
    expect(r.code, r.stderr).toBe(exitCodeFor('UNAVAILABLE'));
    const all = jsonLines(r.stdout);
    const tasks = all.filter((l) => l.type === 'task');
    expect(tasks).toHaveLength(30);
    const down = tasks.filter((t) => t.outcome === 'unreachable');
    expect(down.length).toBeGreaterThan(0);
    for (const t of down) expect(t.host).toBe('127.0.0.1:1');
    for (const t of tasks.filter((x) => x.outcome !== 'unreachable')) expect(t).toMatchObject({ outcome: 'succeeded', stdout: `${t.input as string}\n` });
    expect(all.at(-1)).toMatchObject({ type: 'summary', total: 30, unreachableHosts: ['127.0.0.1:1'] });
  });

  it('--results: of records with the same text, the first keeps the plain folder though it ends last; the others get \\#<number>', async () => {
    const gate = taskGate();
    try {
      const file = join(tmp, 'same.txt');
      writeFileSync(file, 'a\na\na\n');
      const results = join(tmp, 'same-results');
      // Record 1 waits until records 2 and 3 have their folders: it ends last.
      const run = w.spawnGaxx([
        'run',
        '--fleet',
        w.fleet,
        '--tasks',
        file,
        '--results',
        results,
        '--',
        'sh',
        '-c',
        `if [ "$1" = 1 ]; then ${gate.wait}; fi; echo "$1"`,
        '_',
        '{#}',
      ]);
      await vi.waitFor(() => expect(readdirSync(join(results, '1')).filter((n) => !n.startsWith('.'))).toHaveLength(2), { timeout: 60_000, interval: 100 });
      gate.open();
      const end = await run.done;
      expect(end.code, end.stderr).toBe(0);
      const folders = readdirSync(join(results, '1')).sort();
      expect(folders).toEqual(['a', 'a\\#2', 'a\\#3']);
      for (const [name, seq] of [
        ['a', '1'],
        ['a\\#2', '2'],
        ['a\\#3', '3'],
      ] as const) {
        expect(readFileSync(join(results, '1', name, 'seq'), 'utf8')).toBe(`${seq}\n`);
        expect(readFileSync(join(results, '1', name, 'stdout'), 'utf8')).toBe(`${seq}\n`);
        expect(JSON.parse(readFileSync(join(results, '1', name, 'result.json'), 'utf8'))).toMatchObject({ taskId: seq, input: 'a', outcome: 'succeeded' });
      }
    } finally {
      gate.open();
      gate.remove();
    }
  });

  it('bad input: one line, a documented exit code, nothing enqueued', async () => {
    const before = await queueFootprint();
    const cases: Array<[string[], number]> = [
      [['run', '--fleet', 'nope', '--tasks', '-', '--', 'echo', '{}'], exitCodeFor('NOT_FOUND')],
      [['run', '--fleet', w.fleet, '--tasks', '-', '--'], exitCodeFor('USAGE')],
      [['run', '--fleet', w.fleet, '--tasks', join(tmp, 'missing.txt'), '--', 'echo', '{}'], exitCodeFor('NOT_FOUND')],
      // --replace names a task list's record: without --tasks there is none (a plain {} is the command's own).
      [['run', '--fleet', w.fleet, '--replace', '@@', '--', 'echo', '@@'], exitCodeFor('USAGE')],
      [['run', '--fleet', w.fleet, '--tasks', '-', '--', 'sh', '-c', 'echo {}'], exitCodeFor('USAGE')],
      [['run', '--fleet', w.fleet, '--tasks', '-', '--concurrency', '0', '--', 'echo'], exitCodeFor('USAGE')],
    ];
    for (const [args, code] of cases) {
      const r = await w.gaxx(args, { input: 'a\n' });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    }
    expect(await queueFootprint()).toEqual(before);
  });
});
