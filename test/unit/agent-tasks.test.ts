// The task registry with real child processes: retention by TTL and count, the replay buffer
// bound (a replay that lost output says truncated), and the concurrency cap.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { scratchDir } from '../../agent/exec/task-dirs.js';
import { TaskRegistry } from '../../agent/exec/tasks.js';
import type { ExecSpec } from '../../agent/exec/exec.js';
import type { ExecEvent } from '../../proto/index.js';
import { deepTreeScript } from '../helpers/deep-tree.js';
import { skewedClock } from '../helpers/manual-clock.js';

const dir = mkdtempSync(join(tmpdir(), 'gaxx-tasks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spec = (taskId: string, argv: string[]): ExecSpec => ({
  taskId,
  argv,
  env: {},
  cwd: dir,
  workRel: '',
  stdin: Buffer.alloc(0),
  timeoutMs: 10_000,
  outputCapBytes: 1 << 20,
});

function run(reg: TaskRegistry, taskId: string, argv: string[]): Promise<void> {
  return new Promise((resolve) => reg.start(spec(taskId, argv), (ev) => ev.exit && resolve()));
}

describe('TaskRegistry', () => {
  it('forgets finished tasks after the TTL and beyond the count bound, oldest first', async () => {
    const clock = skewedClock();
    const reg = new TaskRegistry({ capacity: 4, retentionMs: 60_000, maxFinished: 2, clock: clock.now });
    await run(reg, 'a', ['true']);
    await run(reg, 'b', ['true']);
    await run(reg, 'c', ['true']);
    expect([reg.get('a'), reg.get('b') !== undefined, reg.get('c') !== undefined]).toEqual([undefined, true, true]);
    // Held to the TTL's last ms, forgotten once the clock passes its end plus the TTL (checked as it is looked up).
    clock.advance(55_000);
    expect(reg.get('c')).toBeDefined();
    clock.advance(5_001);
    expect(reg.get('c')).toBeUndefined();
    expect(reg.startedTotal).toBe(3);
    await reg.shutdown(0);
  });

  it('keeps the id of a forgotten signed task spent until its signature expires; unsigned ids are free again; the oldest go beyond the bound', async () => {
    const clock = skewedClock();
    const reg = new TaskRegistry({ capacity: 4, retentionMs: 60_000, maxSpent: 2, clock: clock.now });
    const until = clock.now() + 3_600_000;
    const forgotten = (ids: string[]): void => {
      clock.advance(60_001);
      expect(ids.map((id) => reg.get(id))).toEqual(ids.map(() => undefined));
    };
    const runSigned = (id: string, expires: number) =>
      new Promise<void>((resolve) => reg.start(spec(id, ['true']), (ev) => ev.exit && resolve(), `key-${id}`, expires));
    await runSigned('s1', until);
    // Still held (within its retention): attach and replay answer for it.
    expect([reg.get('s1') !== undefined, reg.spentUntil('s1')]).toEqual([true, undefined]);
    await run(reg, 'u1', ['true']);
    forgotten(['s1', 'u1']);
    expect([reg.spentUntil('s1'), reg.spentUntil('u1')]).toEqual([until, undefined]);
    // One whose signature has expired by then is free again.
    await runSigned('s2', clock.now() + 1000);
    forgotten(['s2']);
    expect(reg.spentUntil('s2')).toBeUndefined();
    // At most maxSpent ids: s1 (the oldest) goes when s4 comes.
    await runSigned('s3', until);
    await runSigned('s4', until);
    forgotten(['s3', 's4']);
    expect([reg.spentUntil('s1'), reg.spentUntil('s3'), reg.spentUntil('s4')]).toEqual([undefined, until, until]);
    await reg.shutdown(0);
  });

  it("removes a forgotten task's scratch dir, and never a work dir the task named", async () => {
    const data = join(dir, 'data');
    const clock = skewedClock();
    const reg = new TaskRegistry({ capacity: 2, retentionMs: 60_000, dataDir: data, clock: clock.now });
    const start = (taskId: string, cwd: string) => {
      mkdirSync(cwd, { recursive: true });
      return new Promise<void>((resolve) => reg.start({ ...spec(taskId, ['sh', '-c', 'echo out > result.txt']), cwd }, (ev) => ev.exit && resolve()));
    };
    const named = join(data, 'keep');
    await start('s1', scratchDir(data, 's1'));
    await start('n1', named);
    expect(existsSync(join(scratchDir(data, 's1'), 'result.txt'))).toBe(true);
    clock.advance(60_001);
    expect([reg.get('s1'), reg.get('n1')]).toEqual([undefined, undefined]);
    await vi.waitFor(() => expect(existsSync(scratchDir(data, 's1'))).toBe(false));
    expect(existsSync(join(named, 'result.txt'))).toBe(true);
    await reg.shutdown(0);
  });

  it("removes a forgotten task's scratch dir however deep the task made it, and keeps serving", async () => {
    const data = join(dir, 'deep');
    const failed: unknown[] = [];
    const reg = new TaskRegistry({ capacity: 2, retentionMs: 100, dataDir: data, onCleanupFailed: (_d, e) => failed.push(e) });
    const cwd = scratchDir(data, 'deep-1');
    mkdirSync(cwd, { recursive: true });
    const exit = await new Promise<ExecEvent['exit']>((resolve) =>
      reg.start({ ...spec('deep-1', ['sh', '-c', deepTreeScript(3000)]), cwd }, (ev) => ev.exit && resolve(ev.exit)),
    );
    expect(exit?.code).toBe(0);
    // Deeper than PATH_MAX: Node's recursive rm failed with ENAMETOOLONG and left it.
    expect(existsSync(join(cwd, 'd', 'd'))).toBe(true);
    await vi.waitFor(() => expect(reg.get('deep-1')).toBeUndefined(), { timeout: 10_000, interval: 20 });
    // Removing 3,000 levels takes seconds on an idle machine and more than 30 on a loaded one.
    await vi.waitFor(() => expect(existsSync(cwd)).toBe(false), { timeout: 150_000, interval: 50 });
    expect(failed).toEqual([]);
    await run(reg, 'after-deep', ['true']);
    expect(reg.get('after-deep')?.exit?.code).toBe(0);
    await reg.shutdown(0);
  }, 180_000);

  it("tells of an expiry sweep (the agent collects garbage then) once the sweep's scratch dirs are removed", async () => {
    // Only the sweeper's interval is faked and the TTL's clock moved: the tasks and their removals run on real time.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const clock = skewedClock();
    try {
      const data = join(dir, 'sweep');
      const ids = ['w1', 'w2', 'w3'];
      const seen: Array<{ count: number; left: string[] }> = [];
      const reg = new TaskRegistry({
        capacity: 4,
        retentionMs: 60_000,
        clock: clock.now,
        dataDir: data,
        onSweep: (count) => seen.push({ count, left: ids.filter((id) => existsSync(scratchDir(data, id))) }),
      });
      for (const id of ids) {
        mkdirSync(scratchDir(data, id), { recursive: true });
        await new Promise<void>((resolve) =>
          reg.start({ ...spec(id, ['sh', '-c', 'echo out > result.txt']), cwd: scratchDir(data, id) }, (ev) => ev.exit && resolve()),
        );
      }
      clock.advance(60_001);
      vi.advanceTimersByTime(30_000);
      await vi.waitFor(() => expect(seen).toHaveLength(1), { timeout: 10_000, interval: 10 });
      expect(seen[0]).toEqual({ count: 3, left: [] });
      await reg.shutdown(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps the tail of the output within the replay budget and marks the replay truncated', async () => {
    const reg = new TaskRegistry({ capacity: 1, replayBytesPerTask: 1000 });
    await run(reg, 'big', ['sh', '-c', 'head -c 5000 /dev/zero']);
    const t = reg.get('big');
    expect(t?.bufferedBytes).toBeLessThanOrEqual(1000);
    const exit = t?.replayEvents().at(-1)?.exit;
    expect(exit).toMatchObject({ truncated: true, stdoutBytes: 5000 });
    expect(reg.hasRoom()).toBe(true);
    await reg.shutdown(0);
  });

  it('counts running tasks against the capacity and kills them on shutdown', async () => {
    const reg = new TaskRegistry({ capacity: 1 });
    const done = run(reg, 'sleepy', ['sleep', '30']);
    expect(reg.hasRoom()).toBe(false);
    await reg.shutdown(50);
    await done;
    expect(reg.get('sleepy')?.exit?.reason).toBe('shutdown');
  });

  it('keeps no stdin or env of a finished task', async () => {
    const reg = new TaskRegistry({ capacity: 1 });
    const secret = 'stdin-secret-value';
    await new Promise<void>((resolve) =>
      reg.start(
        { ...spec('secretive', ['sh', '-c', 'cat >/dev/null; echo "$TOKEN" | wc -c']), stdin: Buffer.from(secret), env: { TOKEN: 'env-secret' } },
        (ev) => ev.exit && resolve(),
      ),
    );
    const t = reg.get('secretive');
    expect(t?.exit?.code).toBe(0);
    expect(t?.spec.stdin.length).toBe(0);
    expect(t?.spec.env).toEqual({});
    expect(JSON.stringify(t?.replayEvents())).not.toContain('secret');
    await reg.shutdown(0);
  });

  it('bounds finished entries by bytes as well as by count', async () => {
    const reg = new TaskRegistry({ capacity: 1, maxFinished: 1000, maxFinishedBytes: 3 * (100_000 + 1000) });
    const big = 'x'.repeat(100_000);
    for (const id of ['b1', 'b2', 'b3', 'b4', 'b5']) await run(reg, id, ['true', big]);
    const kept = ['b1', 'b2', 'b3', 'b4', 'b5'].filter((id) => reg.get(id) !== undefined);
    expect(kept.length).toBeLessThanOrEqual(3);
    expect(kept).toContain('b5');
    expect(reg.get('b1')).toBeUndefined();
    await reg.shutdown(0);
  });
});
