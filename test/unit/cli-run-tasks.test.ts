// gaxx run --tasks building blocks: template, record reader, batch puller, results-dir names, summary, progress, plan.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { planRun, DEFAULT_WINDOW } from '../../cli/run/plan.js';
import { progressText } from '../../cli/run/progress.js';
import { resultName } from '../../cli/run/results-dir.js';
import { summarize, summaryExitCode, summaryText } from '../../cli/run/summary.js';
import { MAX_RECORD_BYTES, readRecords } from '../../cli/run/task-source.js';
import { CommandTemplate } from '../../cli/run/template.js';
import { BatchPuller } from '../../scheduler/queue/batches.js';

async function records(chunks: Array<string | Buffer>, sep: '\n' | '\0' = '\n'): Promise<string[]> {
  const out: string[] = [];
  for await (const r of readRecords(Readable.from(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c))), sep)) out.push(r);
  return out;
}

describe('command template', () => {
  it('replaces {} and {#} as (parts of) single arguments, never splitting them', () => {
    const t = CommandTemplate.compile(['curl', '-o', 'out/{#}-{}.html', '{}']);
    expect(t.render('a b; rm -rf /', 7)).toEqual(['curl', '-o', 'out/7-a b; rm -rf /.html', 'a b; rm -rf /']);
  });

  it('appends the record when there is no {}', () => {
    expect(CommandTemplate.compile(['echo', 'x']).render('r', 1)).toEqual(['echo', 'x', 'r']);
  });

  it('refuses {} inside a shell -c script (USAGE), but allows it as a positional parameter', () => {
    for (const argv of [
      ['sh', '-c', 'echo {}'],
      ['/bin/bash', '-ec', 'x={}'],
      ['env', 'sh', '-c', 'echo {#}'],
      ['busybox', 'sh', '-c', '{}'],
    ]) {
      expect(() => CommandTemplate.compile(argv)).toThrow(expect.objectContaining({ code: 'USAGE' }));
    }
    expect(CommandTemplate.compile(['sh', '-c', 'echo "$1"', '_', '{}']).render('$(id)', 1)).toEqual(['sh', '-c', 'echo "$1"', '_', '$(id)']);
    expect(() => CommandTemplate.compile([])).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});

describe('record reader', () => {
  it('splits on newlines across chunk borders; a final newline adds no empty record; empty lines are tasks', async () => {
    expect(await records(['ab\nc', 'd\n\ne', 'f\n'])).toEqual(['ab', 'cd', '', 'ef']);
    expect(await records(['x'])).toEqual(['x']);
    expect(await records([])).toEqual([]);
  });

  it('splits on NUL with -0 (newlines are data then)', async () => {
    expect(await records(['a\nb\0c', '\0'], '\0')).toEqual(['a\nb', 'c']);
  });

  it('refuses a record longer than the limit (INVALID_ARGUMENT)', async () => {
    await expect(records([Buffer.alloc(MAX_RECORD_BYTES + 1, 97)])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await records([Buffer.alloc(10, 97), '\n']))[0]).toHaveLength(10);
  });
});

describe('batch puller', () => {
  it('takes what is ready up to max, and ends', async () => {
    async function* gen(): AsyncGenerator<number> {
      for (let i = 0; i < 5; i++) yield i;
    }
    const p = new BatchPuller(gen());
    expect(await p.take(3, 50)).toEqual([0, 1, 2]);
    expect(await p.take(10, 50)).toEqual([3, 4]);
    expect(await p.take(10, 50)).toEqual([]);
    expect(p.ended).toBe(true);
  });

  it('returns a partial batch when the source is slow, keeping the pending item for the next', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    async function* gen(): AsyncGenerator<string> {
      yield 'a';
      await gate;
      yield 'b';
    }
    const p = new BatchPuller(gen());
    expect(await p.take(10, 5)).toEqual(['a']);
    release();
    expect(await p.take(10, 5)).toEqual(['b']);
  });

  it('stops waiting when aborted', async () => {
    const never = { next: () => new Promise<IteratorResult<number>>(() => undefined) };
    const stop = new AbortController();
    const taking = new BatchPuller(never).take(10, 5, stop.signal);
    stop.abort();
    expect(await taking).toEqual([]);
  });
});

describe('results and summary', () => {
  it('folder names follow GNU parallel (/ as \\_, \\ as \\\\); unusable names get the sequence number', () => {
    expect(resultName('a/b\\c', '3')).toBe('a\\_b\\\\c');
    expect(resultName('', '4')).toBe('\\#4');
    expect(resultName('..', '5')).toBe('\\#5');
    expect(resultName('x'.repeat(300), '6')).toBe('\\#6');
  });

  it('the summary line counts tasks in words: "1 task", "2 tasks"', () => {
    expect(summaryText(summarize('r1', { failed: 1 }, 1234))).toBe('gaxx: run r1: 1 task: 0 succeeded, 1 failed, 0 timed out, 0 unknown in 1.2 s');
    expect(summaryText(summarize('r2', { succeeded: 2 }, 50))).toMatch(/^gaxx: run r2: 2 tasks: 2 succeeded, /);
    expect(summaryText(summarize('r0', {}, 0))).toMatch(/^gaxx: run r0: 0 tasks: /);
  });

  it('exit codes: 0 all succeeded, 1 some failed, 12 unknown outcomes, 130 cancelled', () => {
    expect(summaryExitCode(summarize('r', { succeeded: 3 }, 1), false)).toBe(0);
    expect(summaryExitCode(summarize('r', { succeeded: 2, timeout: 1 }, 1), false)).toBe(1);
    expect(summaryExitCode(summarize('r', { succeeded: 2, killed: 1 }, 1), false)).toBe(1);
    expect(summaryExitCode(summarize('r', { failed: 1, unreachable: 1 }, 1), false)).toBe(exitCodeFor('UNAVAILABLE'));
    expect(summaryExitCode(summarize('r', { cancelled: 1 }, 1), true)).toBe(exitCodeFor('CANCELLED'));
    expect(summarize('r', { failed: 1, killed: 2, error: 1, unreachable: 1, timeout: 1 }, 5, ['h2', 'h1', 'h2'])).toMatchObject({
      total: 6,
      failed: 3,
      unknown: 2,
      timedOut: 1,
      unreachableHosts: ['h1', 'h2'],
    });
  });

  it('progress text: done/total, failed, rate, ETA; total unknown while input is read', () => {
    expect(progressText({ done: 50, failed: 2, enqueued: 100, total: 200 }, 10_000)).toBe('gaxx: 50/200 done, 2 failed, 5.0/s, ETA 30s');
    expect(progressText({ done: 50, failed: 0, enqueued: 100, total: undefined }, 10_000)).toBe('gaxx: 50/100+ done, 0 failed, 5.0/s');
  });
});

describe('run plan', () => {
  const plan = (flags: Record<string, string | boolean | string[]>, rest: string[]): ReturnType<typeof planRun> => planRun(flags, rest, 8088);

  it('each-host by default, tasks mode with --tasks; window from --concurrency', () => {
    expect(plan({ agent: ['a,b:9'] }, ['true'])).toMatchObject({ mode: 'each-host', agents: ['a:8088', 'b:9'], window: DEFAULT_WINDOW });
    expect(plan({ fleet: 'web', tasks: '-', concurrency: '8', 'output-cap': '1024', null: true }, ['echo', '{}'])).toMatchObject({
      mode: 'tasks',
      fleet: 'web',
      window: 8,
      separator: '\0',
      common: { outputCapBytes: 1024 },
    });
  });

  it('refuses contradictions and bad values (USAGE)', () => {
    const bad: Array<[Record<string, string | boolean | string[]>, string[]]> = [
      [{ fleet: 'web' }, []],
      [{ fleet: 'web' }, ['echo', '{}']],
      [{ fleet: 'web', agent: ['a'] }, ['true']],
      [{}, ['true']],
      [{ fleet: 'web', tasks: '-', 'each-host': true }, ['true']],
      [{ fleet: 'web', null: true }, ['true']],
      [{ fleet: 'web', tasks: '-', concurrency: '1.5' }, ['true']],
      // A per-host run has one task per host: nothing for --concurrency to bound.
      [{ fleet: 'web', concurrency: '5' }, ['true']],
      [{ fleet: 'bad name' }, ['true']],
      [{ fleet: 'web', 'output-cap': '0' }, ['true']],
    ];
    for (const [f, r] of bad) expect(() => plan(f, r), JSON.stringify([f, r])).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});
