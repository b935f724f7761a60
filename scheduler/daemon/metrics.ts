/**
 * The scheduler's Prometheus metrics, in a registry of its own (several workers may live in one
 * process in tests): tasks by outcome, retries by kind, dispatch latency (enqueue -> agent
 * started), breaker states, in-flight tasks, and queue depth read from Redis at scrape time.
 */
import type { Counter, Histogram, Registry } from 'prom-client';
import { BusyLoopDelay, raceAbort } from '../../proto/index.js';
import type { AgentBreaker } from '../dispatch/agent-pool.js';
import type { BreakerState } from '../dispatch/breaker.js';
import { promClient } from './prom-client.cjs';

/**
 * The longest a scrape waits for the queue depth: a Redis that hangs (its connection up, no
 * answer) would hold every scrape of this registry (the daemon's metrics port, the dashboard's
 * /metrics) with no answer at all. Past it the depth is left out of that scrape.
 */
export const DEPTH_WAIT_MS = 2000;

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

export interface MetricsSources {
  depth?: () => Promise<Record<string, number>>;
  breakers?: () => AgentBreaker[];
  inflight?: () => number;
  /** Runs served (a BullMQ worker each). */
  runs?: () => number;
}

/** Metrics of one scheduler process. */
export class SchedulerMetrics {
  readonly registry: Registry;
  readonly tasks: Counter<'outcome'>;
  readonly retries: Counter<'kind'>;
  readonly dispatchLatency: Histogram;
  readonly published: Counter;
  private sources: MetricsSources = {};
  /**
   * Drives the event-loop delay histogram (processMetrics only): the worker reports each job's
   * start and end. Without process metrics nothing samples, whatever the jobs.
   */
  readonly loop: Pick<BusyLoopDelay, 'started' | 'ended' | 'active'>;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } = promClient();
    this.registry = new Registry();
    const registers = [this.registry];
    this.tasks = new Counter({ name: 'gaxx_scheduler_tasks_total', help: 'Tasks finished, by outcome', labelNames: ['outcome'], registers });
    this.retries = new Counter({
      name: 'gaxx_scheduler_retries_total',
      help: 'Dispatch retries, by kind (transport, busy, failure)',
      labelNames: ['kind'],
      registers,
    });
    this.published = new Counter({ name: 'gaxx_scheduler_duplicate_results_total', help: 'Results not published because the task already had one', registers });
    this.dispatchLatency = new Histogram({
      name: 'gaxx_scheduler_dispatch_latency_seconds',
      help: 'Time from enqueue to the agent starting (or attaching to) the task',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    const src = (): MetricsSources => this.sources;
    new Gauge({
      name: 'gaxx_scheduler_queue_depth',
      help: 'Jobs in the queue by state',
      labelNames: ['state'],
      registers,
      async collect() {
        const depth = src().depth;
        if (!depth) return;
        this.reset();
        const read = depth().catch((): Record<string, number> => ({}));
        const counts = await raceAbort(read, [], DEPTH_WAIT_MS);
        for (const [state, n] of Object.entries(typeof counts === 'string' ? {} : counts)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'gaxx_scheduler_breaker_state',
      help: 'Circuit breaker per agent (address, and the fleet and host it must prove to be): 0 closed, 1 half-open, 2 open',
      labelNames: ['agent', 'fleet', 'host'],
      registers,
      collect() {
        this.reset();
        for (const { agent, state } of src().breakers?.() ?? [])
          this.set({ agent: agent.address, fleet: agent.expect?.fleet ?? '', host: agent.expect?.host ?? '' }, BREAKER_VALUE[state]);
      },
    });
    new Gauge({
      name: 'gaxx_scheduler_inflight_tasks',
      help: 'Tasks dispatched and not yet finished',
      registers,
      collect() {
        this.set(src().inflight?.() ?? 0);
      },
    });
    new Gauge({
      name: 'gaxx_scheduler_runs_served',
      help: 'Runs served at once (a queue worker each)',
      registers,
      collect() {
        this.set(src().runs?.() ?? 0);
      },
    });
    // Event-loop delay sampled every 100 ms, not every 10 (prom-client's default wakes the loop
    // 100 times a second for nothing else), and only while jobs run and 10 s after, as the agents
    // do (proto/loop-delay.ts).
    if (opts.processMetrics)
      this.loop = BusyLoopDelay.collecting(() =>
        collectDefaultMetrics({ register: this.registry, prefix: 'gaxx_scheduler_', eventLoopMonitoringPrecision: 100 }),
      );
    else this.loop = { started: () => undefined, ended: () => undefined, active: false };
  }

  /** Where scrape-time gauges read from. */
  attach(sources: MetricsSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
