// Smoke test of bench/agent-exec: a tiny run of the built bench completes, reports every
// section and ratio as JSON, and leaves no temp dir or agent process behind. Speed is not asserted.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { alive } from '../helpers/procs.js';

const BENCH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bench', 'agent-exec.js');

interface BenchDoc {
  measurements: Array<{
    name: string;
    sequential: { n: number; p50Ms: number };
    levels: Array<{ inFlight: number; ops: number; perSecond: number }>;
    warmup: { ops: number; firstMsPerOp: number; lastMsPerOp: number };
  }>;
  plan: { warmup: number; warmupMin: number; warmupMax: number };
  ratios: Array<{ of: string; over: string; sequentialP50: number; levels: Array<{ inFlight: number; ratio: number }> }>;
  workDir: string;
  agentPid: number;
}

describe('bench/agent-exec', () => {
  it('runs end to end with --iterations 10 --json and cleans up', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [BENCH, '--iterations', '10', '--json'], { timeout: 120_000 });
    const doc = JSON.parse(stdout) as BenchDoc;
    expect(doc.measurements.map((m) => m.name)).toEqual(['agent-exec', 'agent-exec-unsafe', 'spawn', 'spawn-alone', 'sandbox-alone', 'unary', 'flood']);
    for (const m of doc.measurements) {
      expect(m.sequential.n).toBe(20);
      expect(m.levels.map((l) => [l.inFlight, l.ops])).toEqual([
        [1, 10],
        [8, 10],
        [32, 10],
      ]);
      for (const l of m.levels) expect(l.perSecond).toBeGreaterThan(0);
      // The minimum, then whole blocks while still warming, never beyond the bound.
      expect(m.warmup.ops).toBeGreaterThanOrEqual(doc.plan.warmupMin);
      expect(m.warmup.ops).toBeLessThanOrEqual(doc.plan.warmupMax);
      expect(m.warmup.firstMsPerOp).toBeGreaterThan(0);
      expect(m.warmup.lastMsPerOp).toBeGreaterThan(0);
    }
    expect(doc.ratios.map((r) => `${r.of}/${r.over}`)).toEqual([
      'agent-exec/spawn',
      'agent-exec-unsafe/spawn',
      'agent-exec/spawn-alone',
      'agent-exec-unsafe/spawn-alone',
      'agent-exec/sandbox-alone',
      'sandbox-alone/spawn',
      'agent-exec/agent-exec-unsafe',
      'agent-exec/unary',
      'flood/agent-exec',
    ]);
    for (const r of doc.ratios) {
      expect(Number.isFinite(r.sequentialP50) && r.sequentialP50 > 0).toBe(true);
      expect(r.levels).toHaveLength(3);
    }
    expect(existsSync(doc.workDir)).toBe(false);
    expect(alive(doc.agentPid)).toBe(false);
  });
});
