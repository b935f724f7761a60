// The event-loop delay metrics (proto/loop-delay.ts) of the agent and the scheduler daemon sample only while tasks run
// and a tail after: an idle agent keeps no timer waking it for them. prom-client reads the
// histogram the agent gives it; a scrape with nothing sampled reads 0, not a min of 9.2e9 s.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BusyLoopDelay, type LoopHistogram } from '../../proto/index.js';
import { AgentMetrics } from '../../agent/observe/metrics.js';
import { metricValue } from '../helpers/metrics.js';

function fakeHistogram(): LoopHistogram & { enabled: boolean; samples: number[] } {
  const h = {
    enabled: false,
    samples: [] as number[],
    enable: () => !h.enabled && (h.enabled = true),
    disable: () => h.enabled && !(h.enabled = false),
    reset: () => void (h.samples = []),
    get count() {
      return h.samples.length;
    },
    get min() {
      return h.samples.length ? Math.min(...h.samples) : 9223372036854776000;
    },
    get max() {
      return h.samples.length ? Math.max(...h.samples) : 0;
    },
    get mean() {
      return h.samples.length ? h.samples.reduce((a, b) => a + b, 0) / h.samples.length : NaN;
    },
    get stddev() {
      return h.samples.length ? 0 : NaN;
    },
    percentile: () => (h.samples.length ? Math.max(...h.samples) : 0),
  };
  return h;
}

describe('BusyLoopDelay', () => {
  afterEach(() => vi.useRealTimers());

  it('samples from the first task to the tail after the last, and again for the next', () => {
    vi.useFakeTimers();
    const h = fakeHistogram();
    const d = new BusyLoopDelay(1000, h);
    expect(h.enabled).toBe(false);
    d.started();
    d.started();
    expect(h.enabled).toBe(true);
    d.ended();
    vi.advanceTimersByTime(5000);
    // One still runs.
    expect(h.enabled).toBe(true);
    d.ended();
    vi.advanceTimersByTime(999);
    expect(h.enabled).toBe(true);
    // A task within the tail keeps it on.
    d.started();
    vi.advanceTimersByTime(5000);
    expect(h.enabled).toBe(true);
    d.ended();
    vi.advanceTimersByTime(1000);
    expect(h.enabled).toBe(false);
    expect(d.active).toBe(false);
    d.started();
    expect(h.enabled).toBe(true);
  });

  it('reads 0 for everything when nothing was sampled, the histogram otherwise', () => {
    const h = fakeHistogram();
    const v = new BusyLoopDelay(1000, h).view;
    expect([v.min, v.max, v.mean, v.stddev, v.percentile(99)]).toEqual([0, 0, 0, 0, 0]);
    h.samples.push(2e6, 4e6);
    expect([v.min, v.max, v.mean, v.percentile(99)]).toEqual([2e6, 4e6, 3e6, 4e6]);
    v.reset();
    expect(v.count).toBe(0);
    // prom-client's enable() does not switch it on: the tasks do.
    v.enable();
    expect(h.enabled).toBe(false);
  });
});

/** Resolves once the agent's histogram holds `n` samples (each loop turn looks; bounded). */
async function samples(m: AgentMetrics, n: number): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (m.loop.view.count < n) {
    if (performance.now() > deadline) throw new Error(`the histogram took no ${n} samples in 30 s`);
    await new Promise((r) => setImmediate(r));
  }
}

describe("the agent's metrics", () => {
  it('report no delay while idle, and a stall while tasks run', async () => {
    const m = new AgentMetrics('test');
    expect(m.loop.active).toBe(false);
    const idle = await m.registry.metrics();
    expect(metricValue(idle, 'nodejs_eventloop_lag_min_seconds')).toBe(0);
    expect(metricValue(idle, 'nodejs_eventloop_lag_max_seconds')).toBe(0);
    m.loop.started();
    expect(m.loop.active).toBe(true);
    // Once a sample is taken, hold the loop for 300 ms: the next one is at least 200 ms late.
    await samples(m, 1);
    const until = performance.now() + 300;
    while (performance.now() < until);
    await samples(m, 2);
    const busy = await m.registry.metrics();
    m.loop.ended();
    expect(metricValue(busy, 'nodejs_eventloop_lag_max_seconds')).toBeGreaterThan(0.15);
  });
});
