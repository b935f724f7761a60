// Smoke test of bench/fanout on 2 agents and 2 sshd hosts, one run each: every command is timed,
// and each `gaxx run` is broken down (its moments in order; CPU where it was spent: the agents and
// their launchers ran its tasks, a daemon only when there was one). Speed is not asserted.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { RunBreakdown } from '../../bench/lib/run-breakdown.js';
import type { Timing } from '../../bench/lib/timing.js';
import { freePort } from '../helpers/ports.js';

const BENCH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bench', 'fanout.js');
const benchDirs = () => readdirSync(tmpdir()).filter((f) => f.startsWith('gaxx-bench-fanout-'));

describe('bench/fanout', () => {
  it('times every command and breaks each run down, with and without a daemon, then cleans up', async () => {
    const before = benchDirs();
    const port = await freePort();
    const { stdout } = await promisify(execFile)(process.execPath, [BENCH, '--sizes', '2', '--runs', '1', '--port', String(port), '--json'], {
      timeout: 180_000,
    });
    const doc = JSON.parse(stdout) as { timings: Timing[]; breakdowns: RunBreakdown[] };
    expect(doc.timings.map((t) => t.name)).toEqual([
      'node -e 0',
      'gaxx --version',
      'gaxx exec -- true (1 agent)',
      'gaxx run -- true (2 agents, no daemon)',
      expect.stringMatching(/^(parallel-ssh -p 2|xargs -P 2 ssh) \(2 sshd\)$/),
      'gaxx run -- true (2 agents, daemon)',
    ]);
    for (const t of doc.timings) expect(t.medianMs).toBeGreaterThan(0);
    expect(doc.breakdowns.map((b) => b.name)).toEqual(['gaxx run -- true (2 agents, no daemon)', 'gaxx run -- true (2 agents, daemon)']);
    for (const b of doc.breakdowns) {
      const m = b.moments;
      const order = [m.loaded, m.redis, m.enqueued, m.first, m.last, m.done];
      for (let i = 1; i < order.length; i++) expect(order[i]).toBeGreaterThanOrEqual(order[i - 1] as number);
      expect(m.loaded).toBeGreaterThan(0);
      // Both tasks ran on the agents, through their launchers.
      expect(b.cpu.agents).toBeGreaterThan(0);
      expect(b.cpu.launchers).toBeGreaterThan(0);
      // The machine's time holds the CLI's (both counted in 10 ms ticks: one each way).
      expect(b.cpu.machine + 20).toBeGreaterThanOrEqual(b.cpu.cli);
      expect(b.floorMs).toBeGreaterThan(0);
    }
    const [alone, daemon] = doc.breakdowns as [RunBreakdown, RunBreakdown];
    expect(alone.cpu.daemon).toBe(0);
    expect(daemon.cpu.daemon).toBeGreaterThan(0);
    // The daemon's redis-server outlives each run, so its share is counted.
    expect(daemon.cpu.redis).toBeGreaterThan(0);
    expect(benchDirs()).toEqual(before);
  }, 240_000);
});
