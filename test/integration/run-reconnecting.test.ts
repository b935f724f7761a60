/**
 * A run's own Redis connection coming back while the run needs it. A producer connection fails
 * its commands at once while it reconnects (no offline queue), and after an outage it may still
 * wait out a backoff step when Redis already answers the run's blocking reader: a Ctrl-C, or the
 * run's end, falls in that moment. Real redis-server, two real agents, a scheduler daemon as its
 * own process; the run's producer connection is made to reconnect (`disconnect(true)`: closed,
 * then connected again after its first backoff step) at the moment under test.
 */
import { readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachRun } from '../../scheduler/queue/run-control.js';
import { createRunRecord, getRunRecord } from '../../scheduler/queue/run-index.js';
import { resumeRun, runAndWait } from '../../scheduler/queue/run.js';
import { streamRun, type StreamRunOptions } from '../../scheduler/queue/stream-run.js';
import type { TaskInput } from '../../scheduler/queue/task.js';
import { createRedis, waitReady } from '../../scheduler/redis/redis.js';
import { Dashboard } from '../../scheduler/ui/dashboard.js';
import { loadCertDir } from '../../certs/index.js';
import { markerDir } from '../helpers/agent.js';
import { taskGate, type TaskGate } from '../helpers/gate.js';
import { eventually } from '../helpers/poll.js';
import { startSchedulerProcess, type SchedulerProcess } from '../helpers/scheduler.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

let w: SchedulerWorld;
let daemon: SchedulerProcess;
const dirs: string[] = [];
const gates: TaskGate[] = [];

beforeAll(async () => {
  w = await startSchedulerWorld({ agents: 2, prefix: 'gxrc-' });
  daemon = await startSchedulerProcess({ redisUrl: w.redis.url, stateDir: join(w.dir, 'daemon'), certsDir: w.pki.clients.scheduler.dir, concurrency: 8 });
});

afterAll(async () => {
  for (const g of gates) g.open();
  await w?.close();
  for (const g of gates) g.remove();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A ready producer connection of the run's own, as `gaxx run` passes one. */
async function producer(): Promise<ReturnType<typeof createRedis>> {
  const r = createRedis(w.settings, 'producer');
  await waitReady(r);
  return r;
}

/** One task per agent that marks its start in `marks`, then waits at the gate. */
function gatedTasks(marks: string, gate: TaskGate): TaskInput[] {
  return w.agents.map((a, i) => ({
    taskId: `t${i}`,
    agents: [a.address],
    target: { host: a.address },
    argv: ['sh', '-c', `mktemp ${marks}/started.XXXXXX >/dev/null; ${gate.wait}`],
  }));
}

function setUp(): { marks: string; gate: TaskGate; started: () => number } {
  const marks = markerDir('gxrc-marks');
  dirs.push(marks);
  const gate = taskGate();
  gates.push(gate);
  return { marks, gate, started: () => readdirSync(marks).filter((f) => f.startsWith('started.')).length };
}

/** `tasks` as a task-list run on `redis`, served by the daemon. */
function streamOn(runId: string, tasks: TaskInput[], redis: ReturnType<typeof createRedis>, more: Partial<StreamRunOptions>): ReturnType<typeof streamRun> {
  async function* input(): AsyncGenerator<TaskInput> {
    yield* tasks;
  }
  return streamRun(input(), {
    runId,
    settings: w.settings,
    redis,
    signer: w.signer,
    worker: 'never',
    window: 10,
    record: { argv: ['sh'], fleet: '', agents: 2, mode: 'tasks' },
    ...more,
  });
}

/** A run whose gaxx run is gone: its record (its input read to its end) and its queued tasks. */
async function recordedRun(runId: string, tasks: TaskInput[]): Promise<void> {
  await createRunRecord(w.queue.redis, {
    runId,
    argv: ['sh'],
    fleet: '',
    agents: 2,
    mode: 'each-host',
    startedAt: Date.now(),
    total: tasks.length,
    enqueued: tasks.length,
  });
  await w.queue.enqueueRun({ runId, tasks }, w.signer);
}

/**
 * Starts a run over gated tasks (`start`, given the tasks, its own producer connection and an
 * onResult that makes that connection reconnect as the last result is read on the run's
 * reader), opens the gate once both tasks run, and returns what `start` resolved with: the
 * run's end (is it cancelled? its record) then meets its connection reconnecting. With
 * `recorded`, the run is first recorded and queued as a run whose gaxx run is gone.
 */
async function endWhileReconnecting<T>(
  start: (tasks: TaskInput[], redis: ReturnType<typeof createRedis>, onResult: () => void) => Promise<T>,
  recorded?: string,
): Promise<T> {
  const { marks, gate, started } = setUp();
  const tasks = gatedTasks(marks, gate);
  if (recorded) await recordedRun(recorded, tasks);
  const redis = await producer();
  let seen = 0;
  try {
    const running = start(tasks, redis, () => {
      if (++seen === tasks.length) redis.disconnect(true);
    });
    expect(await eventually(() => started() === 2, 60_000)).toBe(true);
    gate.open();
    return await running;
  } finally {
    redis.disconnect();
  }
}

describe('a run whose own connection is reconnecting', () => {
  it('a cancel made then lands once it is back: the daemon Cancels the running tasks and they report cancelled', async () => {
    expect(daemon.pid).toBeGreaterThan(0);
    const { marks, gate, started } = setUp();
    const redis = await producer();
    const cancel = new AbortController();
    try {
      const running = runAndWait(
        { runId: 'rc1', tasks: gatedTasks(marks, gate) },
        { settings: w.settings, redis, signer: w.signer, worker: 'never', cancel: cancel.signal },
      );
      expect(await eventually(() => started() === 2, 60_000)).toBe(true);
      // The Ctrl-C comes while the connection waits out its backoff step.
      redis.once('reconnecting', () => cancel.abort());
      redis.disconnect(true);
      const out = await running;
      expect(out.cancelled).toBe(true);
      for (const t of ['t0', 't1']) expect(out.results.get(t)).toMatchObject({ outcome: 'cancelled', reason: 'cancelled' });
    } finally {
      redis.disconnect();
    }
  }, 120_000);

  it('the same for a task-list run: its cancel lands and the daemon stops its tasks', async () => {
    const { marks, gate, started } = setUp();
    const redis = await producer();
    const cancel = new AbortController();
    const tasks = gatedTasks(marks, gate);
    const seen = new Map<string, string>();
    try {
      const running = streamOn('rc2', tasks, redis, { cancel: cancel.signal, onResult: (r) => seen.set(r.taskId, r.outcome) });
      expect(await eventually(() => started() === 2, 60_000)).toBe(true);
      redis.once('reconnecting', () => cancel.abort());
      redis.disconnect(true);
      const out = await running;
      expect(out.cancelled).toBe(true);
      expect(Object.fromEntries(seen)).toEqual({ t0: 'cancelled', t1: 'cancelled' });
      expect(await getRunRecord(w.queue.redis, 'rc2')).toMatchObject({ state: 'cancelled', total: 2 });
    } finally {
      redis.disconnect();
    }
  }, 120_000);

  it("a task-list run's end read and written then: it ends done, and the run index says so", async () => {
    const out = await endWhileReconnecting((tasks, redis, onResult) => streamOn('rc3', tasks, redis, { onResult }));
    expect(out).toMatchObject({ cancelled: false, total: 2, counts: { succeeded: 2 } });
    expect(await getRunRecord(w.queue.redis, 'rc3')).toMatchObject({ state: 'done', total: 2, counts: { succeeded: 2 } });
  }, 120_000);

  it("a resumed run's end read and written then: the run index says done", async () => {
    const out = await endWhileReconnecting(
      (_tasks, redis, onResult) => resumeRun('rc4', { settings: w.settings, redis, signer: w.signer, worker: 'never', onResult }),
      'rc4',
    );
    expect(out.ended).toBeUndefined();
    expect([...out.results.values()].map((r) => r.outcome)).toEqual(['succeeded', 'succeeded']);
    expect(await getRunRecord(w.queue.redis, 'rc4')).toMatchObject({ state: 'done', counts: { succeeded: 2 } });
  }, 120_000);

  it("a followed run's end (`gaxx runs wait`) read and written then: it ends done, and the run index says so", async () => {
    const out = await endWhileReconnecting((_tasks, redis, onResult) => attachRun('rc5', { settings: w.settings, redis, onResult }), 'rc5');
    expect(out).toMatchObject({ state: 'done', counts: { succeeded: 2 } });
    expect(await getRunRecord(w.queue.redis, 'rc5')).toMatchObject({ state: 'done', counts: { succeeded: 2 } });
  }, 120_000);

  it("the dashboard's cancel made then lands once it is back (202), and the daemon stops the run's tasks", async () => {
    const { marks, gate, started } = setUp();
    const redis = await producer();
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const dash = await Dashboard.start({
      listen: '127.0.0.1:0',
      creds: loadCertDir(w.pki.clients.monitor.dir),
      targets: async () => [],
      redis,
      scrapeIntervalMs: 500,
      tickMs: 100,
      log: quiet,
    });
    const call = (path: string, method: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: dash.port, path, method, headers: { 'x-gaxx-token': dash.token } }, (res) => {
          let body = '';
          res.on('data', (b: Buffer) => (body += b.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      const running = runAndWait({ runId: 'rc6', tasks: gatedTasks(marks, gate) }, { settings: w.settings, signer: w.signer, worker: 'never' });
      expect(await eventually(() => started() === 2, 60_000)).toBe(true);
      const listed = async (): Promise<boolean> =>
        ((JSON.parse((await call(`/api/state?token=${dash.token}`, 'GET')).body) as { runs: Array<{ runId: string }> }).runs ?? []).some(
          (r) => r.runId === 'rc6',
        );
      expect(await eventually(listed, 30_000)).toBe(true);
      const answered = new Promise<{ status: number; body: string }>((resolve, reject) =>
        redis.once('reconnecting', () => call('/api/runs/rc6/cancel', 'POST').then(resolve, reject)),
      );
      redis.disconnect(true);
      expect(await answered).toMatchObject({ status: 202 });
      const out = await running;
      for (const t of ['t0', 't1']) expect(out.results.get(t)).toMatchObject({ outcome: 'cancelled', reason: 'cancelled' });
    } finally {
      await dash.stop();
      redis.disconnect();
    }
  }, 120_000);
});
