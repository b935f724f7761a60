// bench/lib/resident-pages: the memory a group of processes holds, each physical page once.
// Two `sleep` processes share the binary's and libc's pages: together they hold less than the
// sum of their RSS, and at least the larger one; a process counted twice counts once.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { residentFrames, residentTogether } from '../../bench/lib/resident-pages.js';

function vmRss(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
}

const asRoot = process.getuid?.() === 0;

/**
 * Whether `pid` sleeps in its sleep call: the loader has mapped what it maps and the process
 * touches no more pages (its kernel wait channel names the sleep; where the kernel does not say,
 * its state is S and its RSS the same on two reads).
 */
function asleep(pid: number): boolean {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'S') return false;
  const wchan = readFileSync(`/proc/${pid}/wchan`, 'utf8');
  if (wchan !== '' && wchan !== '0') return wchan.includes('nanosleep');
  return vmRss(pid) === vmRss(pid);
}

describe.runIf(asRoot)('bench resident pages', () => {
  const kids: ChildProcess[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 2; i++) kids.push(spawn('sleep', ['600'], { stdio: 'ignore' }));
    // 'spawn' comes once the child has exec'd sleep (it is no longer a copy of this process); its
    // loader may still be mapping libc then, and its RSS growing between two reads.
    await Promise.all(kids.map((k) => once(k, 'spawn')));
    await vi.waitFor(() => expect(kids.every((k) => asleep(k.pid as number))).toBe(true), { timeout: 10_000, interval: 5 });
  });
  afterAll(() => {
    for (const k of kids) k.kill('SIGKILL');
  });

  it('counts what one process holds as its RSS does', () => {
    const pid = kids[0]?.pid as number;
    const together = residentTogether([pid]) as number;
    expect(together).toBeGreaterThan(0);
    // The kernel's RSS counter is kept per CPU and may lag a few pages behind.
    expect(Math.abs(together - vmRss(pid))).toBeLessThanOrEqual(vmRss(pid) * 0.1);
    expect(residentFrames(pid)?.size).toBe(together / 4096);
  });

  it('counts a page shared by two processes once', () => {
    const [a, b] = kids.map((k) => k.pid as number) as [number, number];
    const one = residentTogether([a]) as number;
    expect(residentTogether([a, a])).toBe(one);
    const both = residentTogether([a, b]) as number;
    expect(both).toBeLessThan(one + (residentTogether([b]) as number));
    expect(both).toBeGreaterThanOrEqual(Math.max(one, residentTogether([b]) as number));
  });
});
