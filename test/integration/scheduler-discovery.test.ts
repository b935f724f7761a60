/**
 * How the scheduler daemon finds runs, against what anyone who can write to Redis can put in the
 * registry (`{gaxx}:runs`) and on its channel (`{gaxx}:runs:new`): ids that are no run ids are
 * ignored (the daemon keeps running, and runs registered after them, announced or found by
 * polling, are still served); made-up run ids start no worker; at most --max-runs runs are
 * served at once, and a real run over the cap is served once served runs with nothing to do
 * give up their slots. Real redis-server, a real agent, the built daemon as its own process.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RunDiscovery } from '../../scheduler/dispatch/run-discovery.js';
import { runAndWait } from '../../scheduler/queue/run.js';
import { runExists, runQueueName } from '../../scheduler/queue/runs.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import type { TaskInput } from '../../scheduler/queue/task.js';
import { eventually } from '../helpers/poll.js';
import { startSchedulerProcess, stopAllSchedulers, type SchedulerProcess } from '../helpers/scheduler.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

let world: SchedulerWorld;

beforeAll(async () => {
  world = await startSchedulerWorld({ agents: 1, prefix: 'gxdisc-' });
});

afterAll(async () => {
  await world?.close();
});

afterEach(async () => {
  await stopAllSchedulers();
});

const daemon = (name: string, args: string[] = []): Promise<SchedulerProcess> =>
  startSchedulerProcess({ redisUrl: world.redis.url, stateDir: join(world.dir, name), certsDir: world.pki.clients.scheduler.dir, args });

const task = (taskId: string): TaskInput => {
  const a = world.agents[0]?.address as string;
  return { taskId, agents: [a], target: { host: a }, argv: ['true'] };
};

/** Whether the process is still running (it has not exited). */
async function running(d: SchedulerProcess): Promise<boolean> {
  return (await Promise.race([d.exited.then(() => false), new Promise<boolean>((r) => setImmediate(() => r(true)))])) as boolean;
}

async function runsServed(d: SchedulerProcess): Promise<number> {
  const text = await (await fetch(`http://${d.started.metrics as string}/metrics`)).text();
  return Number(/^gaxx_scheduler_runs_served (\d+)$/m.exec(text)?.[1] ?? NaN);
}

async function redisClients(): Promise<number> {
  const info = await world.queue.redis.info('clients');
  return Number(/^connected_clients:(\d+)/m.exec(info)?.[1]);
}

describe('run discovery from a Redis anyone may write', () => {
  it('ignores ids that are no run ids, on the channel and in the registry, and keeps serving real runs', async () => {
    const r = world.queue.redis;
    const d1 = await daemon('d1');
    for (const bad of ['x:y', '', '../x', 'a'.repeat(100), 'with space']) await r.publish('{gaxx}:runs:new', bad);
    await r.zadd('{gaxx}:runs', 0, 'x:y', Date.now(), 'bad:id', Date.now(), 'x-y');
    expect(await eventually(() => d1.stderr().includes('ignored a run id that is not one'), 20_000), d1.stderr()).toBe(true);
    // Announced: served at once.
    const out = await runAndWait(
      { runId: 'disc1', tasks: [task('t')] },
      { settings: world.settings, signer: world.signer, worker: 'never', timeoutMs: 30_000 },
    );
    expect(out.inProcess).toBe(false);
    expect(out.results.get('t')?.outcome).toBe('succeeded');
    expect(await running(d1)).toBe(true);

    // Registered while no daemon ran (its announcement heard by none): found by polling, past
    // the bad members of the registry.
    d1.kill('SIGKILL');
    await d1.exited;
    const enq = await world.queue.enqueueRun({ runId: 'disc2', tasks: [task('t')] }, world.signer);
    const d2 = await daemon('d2');
    const res = await waitForRun(r, 'disc2', enq.taskIds, { timeoutMs: 30_000 });
    expect(res.results.get('t')?.outcome).toBe('succeeded');
    expect(await running(d2)).toBe(true);
    await r.zrem('{gaxx}:runs', 'x:y', 'bad:id', 'x-y');
  });

  it('made-up run ids start no worker; at most --max-runs are served; a real run over the cap still is', async () => {
    const r = world.queue.redis;
    // Scores an hour ahead: none of them goes stale (and is forgotten) while the test runs.
    const later = Date.now() + 3_600_000;
    for (let i = 0; i < 50; i++) await r.zadd('{gaxx}:runs', later, `fake${i}`);
    // Four with a record, as a run has: served until the cap, the others wait.
    for (let i = 0; i < 4; i++) {
      await r.set(`{gaxx}:run:rec${i}:meta`, JSON.stringify({ runId: `rec${i}`, createdAt: Date.now() }), 'PX', 600_000);
      await r.zadd('{gaxx}:runs', later, `rec${i}`);
    }
    const before = await redisClients();
    const d = await daemon('d3', ['--max-runs', '2']);
    expect(d.started.maxRuns).toBe(2);
    expect(await eventually(() => d.stderr().includes('run cap reached'), 20_000), d.stderr()).toBe(true);
    expect(await runsServed(d)).toBe(2);
    // The daemon's own few connections and two runs' workers, not one per id.
    expect((await redisClients()) - before).toBeLessThan(20);

    const out = await runAndWait(
      { runId: 'disc3', tasks: [task('t')] },
      { settings: world.settings, signer: world.signer, worker: 'never', timeoutMs: 30_000 },
    );
    expect(out.inProcess).toBe(false);
    expect(out.results.get('t')?.outcome).toBe('succeeded');
    expect(await runsServed(d)).toBeLessThanOrEqual(2);
    expect(await running(d)).toBe(true);
    await r.zrem('{gaxx}:runs', ...Array.from({ length: 50 }, (_, i) => `fake${i}`), ...Array.from({ length: 4 }, (_, i) => `rec${i}`));
  });

  it('made-up runs whose only jobs are delayed far into the future hold no slot of --max-runs: a real run is served', async () => {
    const r = world.queue.redis;
    const later = Date.now() + 3_600_000;
    // Three writes each, as anyone who can write to Redis could: a record, a job due in an hour, a registry entry.
    for (let i = 0; i < 2; i++) {
      await r.set(`{gaxx}:run:held${i}:meta`, JSON.stringify({ runId: `held${i}`, createdAt: Date.now() }), 'PX', 600_000);
      await r.zadd(`{gaxx}:${runQueueName(`held${i}`)}:delayed`, later * 0x1000, 'j1');
      await r.zadd('{gaxx}:runs', later, `held${i}`);
    }
    const d = await daemon('d4', ['--max-runs', '2']);
    const out = await runAndWait(
      { runId: 'disc4', tasks: [task('t')] },
      { settings: world.settings, signer: world.signer, worker: 'never', timeoutMs: 30_000 },
    );
    expect(out.results.get('t')?.outcome).toBe('succeeded');
    expect(await running(d)).toBe(true);
    await r.zrem('{gaxx}:runs', 'held0', 'held1');
    await r.del(`{gaxx}:${runQueueName('held0')}:delayed`, `{gaxx}:${runQueueName('held1')}:delayed`);
  });

  it('an announced run is served at once; a made-up announcement is dropped, and those after it are checked first', async () => {
    const r = world.queue.redis;
    // Only this test's ids (the registry still lists the runs of the tests before).
    const mine = (id: string): boolean => /^(ann|made)\d$/.test(id);
    const served: string[] = [];
    const gone: string[] = [];
    const exists = (runId: string): Promise<boolean> => runExists(r, runId);
    const d = new RunDiscovery({
      redis: r,
      onRun: (id) => void (mine(id) && served.push(id)),
      onGone: (id) => void (mine(id) && gone.push(id)),
      hasWork: async () => false,
      exists,
      forget: async () => undefined,
      pollMs: 3_600_000,
    });
    try {
      await d.start();
      await r.set('{gaxx}:run:ann1:meta', JSON.stringify({ runId: 'ann1', createdAt: Date.now() }), 'PX', 600_000);
      await r.publish('{gaxx}:runs:new', 'ann1');
      expect(await eventually(() => served.includes('ann1'), 10_000)).toBe(true);
      // Made up: served while it is checked, then dropped.
      await r.publish('{gaxx}:runs:new', 'made1');
      expect(await eventually(() => gone.includes('made1'), 10_000)).toBe(true);
      expect(served).toEqual(['ann1', 'made1']);
      // The next ones are checked first: a made-up one is never served, a real one still is.
      await r.publish('{gaxx}:runs:new', 'made2');
      await r.set('{gaxx}:run:ann2:meta', JSON.stringify({ runId: 'ann2', createdAt: Date.now() }), 'PX', 600_000);
      await r.publish('{gaxx}:runs:new', 'ann2');
      expect(await eventually(() => served.includes('ann2'), 10_000)).toBe(true);
      expect(served).toEqual(['ann1', 'made1', 'ann2']);
      expect(gone).toEqual(['made1']);
    } finally {
      d.stop();
    }
  });
});
