/**
 * Turns measurements into ratios against baselines measured in the same run, and prints them
 * as a table (or JSON). A ratio is time per operation of the measured thing over time per
 * operation of the baseline: 2.0x means "costs twice as much as the baseline".
 */
import type { Measurement } from './profile.js';

/** Which measurement to compare with which baseline, by name. */
export interface RatioSpec {
  of: string;
  over: string;
}

export interface Ratio extends RatioSpec {
  /** p50 latency of `of` / p50 latency of `over`, sequential. */
  sequentialP50: number;
  /** Per in-flight level: throughput of `over` / throughput of `of`. */
  levels: Array<{ inFlight: number; ratio: number }>;
}

/** Ratios for every spec whose two measurements exist. */
export function computeRatios(ms: Measurement[], specs: RatioSpec[]): Ratio[] {
  const byName = new Map(ms.map((m) => [m.name, m]));
  const out: Ratio[] = [];
  for (const spec of specs) {
    const a = byName.get(spec.of);
    const b = byName.get(spec.over);
    if (!a || !b) continue;
    out.push({
      ...spec,
      sequentialP50: a.sequential.p50Ms / b.sequential.p50Ms,
      levels: a.levels.flatMap((l) => {
        const base = b.levels.find((x) => x.inFlight === l.inFlight);
        return base ? [{ inFlight: l.inFlight, ratio: base.perSecond / l.perSecond }] : [];
      }),
    });
  }
  return out;
}

const fixed = (v: number, d: number) => (Number.isFinite(v) ? v.toFixed(d) : '-');
const row = (cells: string[], widths: number[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[0] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');

/** The results table: latency, throughput per level, CPU per op at the highest level, the warm-up's course. */
export function formatMeasurements(ms: Measurement[]): string {
  const levels = [...new Set(ms.flatMap((m) => m.levels.map((l) => l.inFlight)))];
  const top = Math.max(...levels);
  const head = [
    '',
    'seq p50 ms',
    'seq p99 ms',
    ...levels.map((n) => `ops/s @${n}`),
    `bench cpu µs/op @${top}`,
    `agent cpu µs/op @${top}`,
    'warm-up ops',
    'warm-up ms/op first -> last',
  ];
  const body = ms.map((m) => {
    const at = (n: number) => m.levels.find((l) => l.inFlight === n);
    const topLevel = at(top);
    return [
      `${m.name}: ${m.label}`,
      fixed(m.sequential.p50Ms, 2),
      fixed(m.sequential.p99Ms, 2),
      ...levels.map((n) => fixed(at(n)?.perSecond ?? NaN, 0)),
      fixed(topLevel?.benchCpuUs ?? NaN, 0),
      topLevel?.agentCpuUs == null ? '-' : fixed(topLevel.agentCpuUs, 0),
      String(m.warmup.ops),
      `${fixed(m.warmup.firstMsPerOp, 2)} -> ${fixed(m.warmup.lastMsPerOp, 2)}`,
    ];
  });
  return table([head, ...body]);
}

/** The ratio table. */
export function formatRatios(ratios: Ratio[]): string {
  if (ratios.length === 0) return '';
  const levels = ratios[0]?.levels.map((l) => l.inFlight) ?? [];
  const head = ['time per op ratio', 'seq p50', ...levels.map((n) => `@${n} in flight`)];
  const body = ratios.map((r) => [
    `${r.of} / ${r.over}`,
    `${fixed(r.sequentialP50, 2)}x`,
    ...levels.map((n) => `${fixed(r.levels.find((l) => l.inFlight === n)?.ratio ?? NaN, 2)}x`),
  ]);
  return table([head, ...body]);
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => row(r, widths).trimEnd()).join('\n');
}
