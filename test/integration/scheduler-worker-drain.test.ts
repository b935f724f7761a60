// A worker drained at once after it starts (as `gaxx runs wait` and `gaxx run --resume` do for a
// run that turns out to be finished) ends cleanly: its BullMQ worker is closed once its
// connection is set up, not while it is, which made BullMQ emit an error nobody listened to
// (an uncaught exception: the CLI died with exit 1). Vitest fails the run on any uncaught
// error, also one that comes after the test, while the file's clean-up runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

let world: SchedulerWorld;
beforeAll(async () => {
  world = await startSchedulerWorld({ agents: 1, prefix: 'gxdr-' });
}, 120_000);
afterAll(async () => {
  await world?.close();
});

describe('scheduler worker drain', () => {
  it('workers serving one run, and a daemon worker, each drained right after it starts, end without an error', async () => {
    const drained: string[] = [];
    // Drained after 0 to 9 turns of the event loop: from the first turn on, the worker's
    // connection is being set up (the old close failed so every time).
    for (let turns = 0; turns < 10; turns++) {
      const worker = SchedulerWorker.start({ settings: world.settings, connect: world.connect(), runId: `drained-${turns}` });
      for (let t = 0; t < turns; t++) await new Promise((r) => setImmediate(r));
      await worker.drain(1000);
      drained.push(`drained-${turns}`);
    }
    const daemon = SchedulerWorker.start({ settings: world.settings, connect: world.connect() });
    await daemon.drain(1000);
    expect(drained).toHaveLength(10);
    // Drained workers leave the queue as they found it: the run's queue is still there to serve.
    expect(await world.queue.redis.ping()).toBe('PONG');
  });
});
