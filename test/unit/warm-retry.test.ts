// A launcher whose warm sandboxes kept failing to start tries one again after a wait (doubling
// while it fails) instead of starting every task cold for the rest of its life: what failed
// may pass (a full disk freed, a process limit no longer met).
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { WarmTemplate } from '../../agent/exec/launcher-protocol.js';
import { WARM_PREFIX, WarmPools } from '../../agent/exec/warm-pool.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('warm sandboxes that kept failing', () => {
  it('are tried again after a wait, said once when they stop and once when they start again', async () => {
    const root = mkdtempSync(join(tmpdir(), 'gaxx-warm-retry-'));
    dirs.push(root);
    // The tasks dir cannot be made: a file is where its parent should be.
    writeFileSync(join(root, 'data'), '');
    const tasksDir = join(root, 'data', 'tasks');
    const said: string[] = [];
    const pools = new WarmPools((what) => said.push(what), 50);
    const t: WarmTemplate = { prefix: [], env: { PATH: '/usr/bin:/bin' }, tasksDir, count: 2 };
    try {
      pools.prefill(t);
      for (let i = 0; i < 3; i++) pools.topUp();
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/; tasks start cold, a warm sandbox is tried again in 0 s$/);
      // The cause goes away: the next try starts one, and the pool fills again.
      rmSync(join(root, 'data'));
      mkdirSync(tasksDir, { recursive: true });
      await vi.waitFor(() => expect(said).toHaveLength(2), { timeout: 30_000, interval: 20 });
      expect(said[1]).toBe('a warm sandbox started again: tasks go warm from now on');
      await vi.waitFor(() => expect(readdirSync(tasksDir).filter((n) => n.startsWith(WARM_PREFIX))).toHaveLength(2), { timeout: 30_000, interval: 20 });
    } finally {
      pools.drain();
    }
    expect(said).toHaveLength(2);
  });
});
