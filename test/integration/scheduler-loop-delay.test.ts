// The scheduler daemon's event-loop delay metrics (proto/loop-delay.ts) sample only while its
// worker has jobs and a tail after, as the agents' do: an idle daemon keeps no timer waking it
// for them, and a scrape then reads 0 rather than a min of 9.2e9 s.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerMetrics } from '../../scheduler/daemon/metrics.js';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { metricValue } from '../helpers/metrics.js';
import { eventually } from '../helpers/poll.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';
import { markerDir } from '../helpers/agent.js';

let world: SchedulerWorld;
beforeAll(async () => {
  world = await startSchedulerWorld({ agents: 1, prefix: 'gxld-' });
}, 120_000);
afterAll(async () => {
  await world?.close();
});

describe('scheduler event-loop delay', () => {
  it('never samples without process metrics', () => {
    const metrics = new SchedulerMetrics();
    metrics.loop.started();
    expect(metrics.loop.active).toBe(false);
    metrics.loop.ended();
  });

  it('samples while a job runs, not before', async () => {
    const metrics = new SchedulerMetrics({ processMetrics: true });
    const worker = SchedulerWorker.start({ settings: world.settings, connect: world.connect(), concurrency: 4, metrics });
    try {
      await worker.ready();
      expect(metrics.loop.active).toBe(false);
      const idle = await metrics.text();
      expect(metricValue(idle, 'gaxx_scheduler_nodejs_eventloop_lag_min_seconds')).toBe(0);

      // A task that runs until the test releases it: the job is in flight meanwhile.
      const shared = markerDir('loop-delay');
      const began = join(shared, 'began');
      const release = join(shared, 'release');
      const agent = world.agents[0]?.address as string;
      const enq = await world.queue.enqueueRun(
        {
          runId: 'ld1',
          tasks: [
            { taskId: 't', agents: [agent], target: { host: agent }, argv: ['sh', '-c', ': > "$0"; while [ ! -e "$1" ]; do sleep 0.05; done', began, release] },
          ],
        },
        world.signer,
      );
      expect(await eventually(() => existsSync(began), 60_000, 25)).toBe(true);
      expect(metrics.loop.active).toBe(true);
      writeFileSync(release, '');
      const res = await waitForRun(world.queue.redis, 'ld1', enq.taskIds, { timeoutMs: 60_000 });
      expect(res.results.get('t')?.outcome).toBe('succeeded');
      // Still within the tail after the job.
      expect(metrics.loop.active).toBe(true);
      expect(metricValue(await metrics.text(), 'gaxx_scheduler_nodejs_eventloop_lag_max_seconds')).toBeLessThan(60);
    } finally {
      await worker.drain(2000);
    }
  }, 120_000);
});
