import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { waitReady } from '../../scheduler/redis/redis.js';
import { LiveOutput, liveShownBefore } from '../../scheduler/queue/live.js';
import { publishResult, runEventsKey, taskResult, type OutputChunk, type TaskResult } from '../../scheduler/queue/results.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { redisAndConnection, type TestRedis } from '../helpers/redis.js';
import type { Redis } from 'ioredis';

const result = (taskId: string, over: Partial<TaskResult> = {}): TaskResult =>
  taskResult(
    { runId: 'res1', taskId, host: '127.0.0.1:1', outcome: 'succeeded', reason: '' },
    { exitCode: 0, durationMs: 3, stdoutBytes: 2, attempts: 1, startedOn: ['127.0.0.1:1'], ...over },
  );

describe('run results stream', () => {
  let redis: TestRedis;
  let r: Redis;
  let close: (() => Promise<void>) | undefined;
  beforeAll(async () => ({ redis, conn: r, close } = await redisAndConnection('worker')));
  afterAll(() => close?.());

  it('publishes each task once, with its output, and waitForRun collects every result', async () => {
    const big = Buffer.alloc(200 * 1024, 7);
    expect(
      await publishResult(r, result('a'), [
        { stream: 1, data: Buffer.from('hi') },
        { stream: 2, data: big },
      ]),
    ).toBe(true);
    // A replayed re-dispatch publishes again: ignored.
    expect(await publishResult(r, result('a', { replayed: true }), [{ stream: 1, data: Buffer.from('hi') }])).toBe(false);
    const seen: string[] = [];
    // 'b' is published only once the wait has collected 'a': it arrives while the wait is on.
    const late: Array<Promise<boolean>> = [];
    const onResult = (x: TaskResult): void => {
      seen.push(x.taskId);
      if (x.taskId === 'a') late.push(publishResult(r, result('b', { outcome: 'failed', exitCode: 3 }), []));
    };
    const out = await waitForRun(r, 'res1', ['a', 'b'], { timeoutMs: 10_000, onResult });
    expect(await Promise.all(late)).toEqual([true]);
    expect(seen.sort()).toEqual(['a', 'b']);
    expect(out.results.get('a')?.replayed).toBe(false);
    expect(out.results.get('b')).toMatchObject({ outcome: 'failed', exitCode: 3 });
    const chunks = out.output.get('a') ?? [];
    expect(Buffer.concat(chunks.filter((c) => c.stream === 1).map((c) => c.data)).toString()).toBe('hi');
    expect(Buffer.concat(chunks.filter((c) => c.stream === 2).map((c) => c.data)).equals(big)).toBe(true);
    expect(await r.pttl(runEventsKey('res1'))).toBeGreaterThan(0);
  });

  it('keeps waiting through a redis-server restart', async () => {
    const waiting = waitForRun(r, 'res2', ['a'], { timeoutMs: 20_000 });
    // The wait is on once its reader is blocked in XREAD on the server.
    await vi.waitFor(async () => expect(await r.client('LIST')).toMatch(/flags=[a-zA-Z]*b[a-zA-Z]* .*\bcmd=xread\b/), { timeout: 10_000, interval: 20 });
    await redis.restart();
    await waitReady(r, 10_000);
    await publishResult(r, result('a', { runId: 'res2' }), []);
    expect((await waiting).results.get('a')?.outcome).toBe('succeeded');
  });

  it('streams live output, coalesced and capped; a reader that saw exactly it need not show the output again', async () => {
    const chunk = (stream: 1 | 2, text: string): OutputChunk => ({ stream, data: Buffer.from(text) });
    const lines = ['a\n', 'b\n', 'c\n'].map((t) => chunk(1, t));
    const live = new LiveOutput(r, 'live1', 'ok', 1024, { flushMs: 20 });
    for (const c of lines) live.push(c);
    expect(await live.close()).toEqual({ bytes: 6, exact: true });
    // Three small chunks of one stream became one entry.
    const entries = await r.xrange(runEventsKey('live1'), '-', '+');
    expect(entries.filter(([, f]) => f[1] === 'live')).toHaveLength(1);
    await publishResult(r, result('ok', { runId: 'live1' }), lines, 6);

    // Capped at 4 bytes: not the whole output, so not exact.
    const capped = new LiveOutput(r, 'live1', 'capped', 4, { flushMs: 20 });
    for (const c of lines) capped.push(c);
    expect(await capped.close()).toEqual({ bytes: 4, exact: false });
    await publishResult(r, result('capped', { runId: 'live1' }), lines);

    // A scheduler that died mid-task streamed a part; the next one ran the task anew (another
    // execution): its output is not the shown part's continuation, so none of it goes live.
    const dead = new LiveOutput(r, 'live1', 'again', 1024, { flushMs: 20 });
    dead.push(chunk(2, 'partial'));
    await dead.close();
    expect(await liveShownBefore(r, 'live1', 'again')).toBe(7);
    const next = new LiveOutput(r, 'live1', 'again', 1024, { flushMs: 20, shownBefore: 7 });
    next.restart();
    next.push(chunk(1, 'whole\n'));
    expect(await next.close()).toEqual({ bytes: 7, exact: false });
    expect(await liveShownBefore(r, 'live1', 'again')).toBe(-1);
    await publishResult(r, result('again', { runId: 'live1' }), [chunk(1, 'whole\n')]);

    // After its result, no live entry is added for a task.
    const late = new LiveOutput(r, 'live1', 'ok', 1024, { flushMs: 20 });
    late.push(chunk(1, 'late'));
    expect(await late.close()).toEqual({ bytes: 0, exact: false });

    const seenLive: string[] = [];
    const shown = new Map<string, boolean>();
    await waitForRun(r, 'live1', ['ok', 'capped', 'again'], {
      timeoutMs: 10_000,
      onLive: (task, c) => seenLive.push(`${task}:${c.data.toString()}`),
      onResult: (x, _o, liveShown) => shown.set(x.taskId, liveShown),
    });
    expect(seenLive).toEqual(['ok:a\nb\nc\n', 'capped:a\nb\n', 'again:partial']);
    expect(Object.fromEntries(shown)).toEqual({ ok: true, capped: false, again: false });
  });

  it('a dispatch that takes a task over goes on with its live view exactly: each byte once, in order', async () => {
    const chunk = (stream: 1 | 2, text: string): OutputChunk => ({ stream, data: Buffer.from(text) });
    // The first dispatch showed a part (its worker then died, its last bytes not yet published).
    const first = new LiveOutput(r, 'take1', 'cont', 1024, { flushMs: 20 });
    first.push(chunk(1, 'one\n'));
    first.push(chunk(2, 'warn\n'));
    await first.close();
    // The next is attached to the same execution, which the agent replays from its first byte.
    const shownBefore = await liveShownBefore(r, 'take1', 'cont');
    expect(shownBefore).toBe(9);
    const next = new LiveOutput(r, 'take1', 'cont', 1024, { flushMs: 20, shownBefore });
    next.resume(true);
    for (const c of [chunk(1, 'one\n'), chunk(2, 'warn\n'), chunk(1, 'two\n')]) next.push(c);
    // A stalled first worker that comes back publishes nothing more: the entries moved on without it.
    const stale = new LiveOutput(r, 'take1', 'cont', 1024, { flushMs: 20, shownBefore: 9 });
    await vi.waitFor(async () => expect(await liveShownBefore(r, 'take1', 'cont')).toBe(13), { timeout: 5000, interval: 10 });
    stale.push(chunk(1, 'late\n'));
    expect(await stale.close()).toEqual({ bytes: 9, exact: false });
    expect(await next.close()).toEqual({ bytes: 13, exact: true });
    const whole = [chunk(1, 'one\n'), chunk(2, 'warn\n'), chunk(1, 'two\n')];
    await publishResult(r, result('cont', { runId: 'take1' }), whole, 13, { outputIsLive: true });

    // Attached, but the agent's buffer dropped the start: the live view closes for good.
    const part = new LiveOutput(r, 'take1', 'tail', 1024, { flushMs: 20 });
    part.push(chunk(1, 'head\n'));
    await part.close();
    const cut = new LiveOutput(r, 'take1', 'tail', 1024, { flushMs: 20, shownBefore: await liveShownBefore(r, 'take1', 'tail') });
    cut.resume(false);
    cut.push(chunk(1, 'end\n'));
    expect(await cut.close()).toEqual({ bytes: 5, exact: false });
    const later = new LiveOutput(r, 'take1', 'tail', 1024, { flushMs: 20, shownBefore: await liveShownBefore(r, 'take1', 'tail') });
    later.resume(true);
    later.push(chunk(1, 'end\n'));
    expect(await later.close()).toEqual({ bytes: 0, exact: false });
    await publishResult(r, result('tail', { runId: 'take1' }), [chunk(1, 'head\nmiddle\nend\n')]);

    const live: string[] = [];
    const shown = new Map<string, boolean>();
    const res = await waitForRun(r, 'take1', ['cont', 'tail'], {
      timeoutMs: 10_000,
      onLive: (task, c) => live.push(`${task}:${c.data.toString()}`),
      onResult: (x, _o, liveShown) => shown.set(x.taskId, liveShown),
    });
    expect(live).toEqual(['cont:one\n', 'cont:warn\n', 'cont:two\n', 'tail:head\n']);
    // Shown once and whole: not printed again; the other is printed in full after its part.
    expect(Object.fromEntries(shown)).toEqual({ cont: true, tail: false });
    expect(Buffer.concat((res.output.get('cont') ?? []).map((c) => c.data)).toString()).toBe('one\nwarn\ntwo\n');
  });

  it('stores output streamed live exactly only once, and keeps a run within its output budget', async () => {
    const chunk = (text: string): OutputChunk => ({ stream: 1, data: Buffer.from(text) });
    const live = new LiveOutput(r, 'once1', 'a', 1024, { flushMs: 20 });
    live.push(chunk('0123456789'));
    expect(await live.close()).toEqual({ bytes: 10, exact: true });
    await publishResult(r, result('a', { runId: 'once1' }), [chunk('0123456789')], 10, { outputIsLive: true, budgetBytes: 25 });
    // Over the budget (10 live + 20 > 25): the result is stored, its output is not.
    await publishResult(r, result('b', { runId: 'once1' }), [chunk('x'.repeat(20))], undefined, { budgetBytes: 25 });
    await publishResult(r, result('c', { runId: 'once1' }), [chunk('small')], undefined, { budgetBytes: 25 });
    const entries = await r.xrange(runEventsKey('once1'), '-', '+');
    const kinds = entries.map(([, f]) => `${f[1]}:${f[3]}`);
    expect(kinds).toEqual(['live:a', 'res:a', 'res:b', 'out:c', 'res:c']);
    const res = await waitForRun(r, 'once1', ['a', 'b', 'c'], { timeoutMs: 10_000 });
    expect(Buffer.concat((res.output.get('a') ?? []).map((c) => c.data)).toString()).toBe('0123456789');
    expect(res.results.get('a')?.truncated).toBe(false);
    expect(res.results.get('b')).toMatchObject({ truncated: true });
    expect(res.output.get('b') ?? []).toEqual([]);
    expect(Buffer.concat((res.output.get('c') ?? []).map((c) => c.data)).toString()).toBe('small');
  });

  it('gives up with DEADLINE_EXCEEDED when results do not come', async () => {
    await expect(waitForRun(r, 'nores', ['x'], { timeoutMs: 300 })).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
  });
});
