/**
 * The event-loop delay histogram behind `nodejs_eventloop_lag_*` (prom-client's default metrics,
 * in the agent and the scheduler daemon), sampling only while the process has work. Node's
 * histogram samples with a timer: every 100 ms, an idle agent woke 10 times a second for it
 * alone (1.2 ms of CPU a second here, most of what an idle agent spends), which a machine running
 * many agents paid for all the time. It now samples from the start of a piece of work (an
 * agent's task, a daemon's job) until `tailMs` after the last one ended; while it does not, the
 * loop has nothing to be late for.
 *
 * prom-client makes its histogram with `perf_hooks.monitorEventLoopDelay` (at the resolution its
 * `eventLoopMonitoringPrecision` asks) and reads min, max, mean, stddev and percentiles from it
 * at each scrape, then resets it: `collecting()` wraps the histogram it makes. A scrape that
 * finds no sample since the last one reads 0 (Node's histogram would say a min of 9.2e9 s and a
 * mean of NaN).
 */
import { nodePerfHooks } from './builtins.js';
import { AfterQuiet } from './quiet.js';

/** What prom-client reads of the histogram it makes. */
export interface LoopHistogram {
  enable(): boolean;
  disable(): boolean;
  reset(): void;
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly stddev: number;
  percentile(p: number): number;
}

/** How long the histogram still samples after the last piece of work ended. */
const LOOP_TAIL_MS = 10_000;

export class BusyLoopDelay {
  private sampling = false;
  private readonly quiet: AfterQuiet;

  constructor(
    tailMs: number,
    private readonly histogram: LoopHistogram,
  ) {
    this.quiet = new AfterQuiet(tailMs, () => {
      this.histogram.disable();
      this.sampling = false;
    });
  }

  /**
   * Runs `make` (prom-client's collectDefaultMetrics) with `perf_hooks.monitorEventLoopDelay`
   * wrapped: the histogram prom-client asks for (at its resolution) is switched by the work, and
   * prom-client reads it through `view`. The original is restored after.
   */
  static collecting(make: () => void, tailMs = LOOP_TAIL_MS): BusyLoopDelay {
    const perfHooks = nodePerfHooks();
    const original = perfHooks.monitorEventLoopDelay;
    let made: BusyLoopDelay | undefined;
    perfHooks.monitorEventLoopDelay = ((o?: Parameters<typeof original>[0]) => {
      made = new BusyLoopDelay(tailMs, original(o));
      return made.view;
    }) as unknown as typeof original;
    try {
      make();
    } finally {
      perfHooks.monitorEventLoopDelay = original;
    }
    // A prom-client that made none: one that nothing reads, switched by the work all the same.
    return made ?? new BusyLoopDelay(tailMs, original());
  }

  /** Work started: sample until the last piece has been over for tailMs. */
  started(): void {
    this.quiet.started();
    if (!this.sampling) {
      this.histogram.enable();
      this.sampling = true;
    }
  }

  /** Work ended: with none left, sampling stops tailMs later unless more starts. */
  ended(): void {
    this.quiet.ended();
  }

  /** Whether it samples now. */
  get active(): boolean {
    return this.sampling;
  }

  /** The histogram as prom-client sees it: switched by the work, 0 for all when nothing was sampled. */
  readonly view: LoopHistogram = this.viewOf();

  private viewOf(): LoopHistogram {
    const h = (): LoopHistogram => this.histogram;
    const or0 = (v: () => number): number => (h().count === 0 ? 0 : v());
    return {
      // prom-client enables it once it made it: sampling follows the work instead.
      enable: () => false,
      disable: () => false,
      reset: () => h().reset(),
      get count() {
        return h().count;
      },
      get min() {
        return or0(() => h().min);
      },
      get max() {
        return or0(() => h().max);
      },
      get mean() {
        return or0(() => h().mean);
      },
      get stddev() {
        return or0(() => h().stddev);
      },
      percentile: (p) => or0(() => h().percentile(p)),
    };
  }
}
