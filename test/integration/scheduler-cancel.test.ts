/**
 * Cancelling a run and missing run inputs, with a real redis-server and two real agents over
 * mTLS: the worker in this process, or a scheduler daemon as its own process.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskSigner } from '../../proto/index.js';
import { isCancelled, requestCancel } from '../../scheduler/queue/cancel.js';
import { runInputKey, type TaskQueue } from '../../scheduler/queue/queue.js';
import type { RedisSettings } from '../../scheduler/redis/redis.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { runAndWait } from '../../scheduler/queue/run.js';
import type { TaskInput } from '../../scheduler/queue/task.js';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import type { AgentProcess } from '../helpers/agent.js';
import type { Pki } from '../helpers/pki.js';
import type { TestRedis } from '../helpers/redis.js';
import { startSchedulerProcess } from '../helpers/scheduler.js';
import { agentInfo, startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';
import { taskGate } from '../helpers/gate.js';

describe('cancelling runs and missing inputs', () => {
  let world: SchedulerWorld;
  let dir: string;
  let pki: Pki;
  let redis: TestRedis;
  let settings: RedisSettings;
  let agents: AgentProcess[];
  let q: TaskQueue;
  let signer: TaskSigner;
  const connect = (): ReturnType<SchedulerWorld['connect']> => world.connect();

  beforeAll(async () => {
    world = await startSchedulerWorld({ agents: 2, prefix: 'gxc-' });
    ({ dir, pki, redis, settings, agents, queue: q, signer } = world);
  });

  afterAll(async () => {
    await world?.close();
  });

  async function infos(): Promise<Array<{ running: number; started: number }>> {
    return Promise.all(
      agents.map(async (a) => {
        const i = await agentInfo(world, a);
        return { running: i.runningTasks, started: Number(i.tasksStartedTotal) };
      }),
    );
  }

  /** Waits (bounded) until the agents run `n` tasks in all. */
  async function runningReaches(n: number): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if ((await infos()).reduce((s, x) => s + x.running, 0) >= n) return;
      await sleep(50);
    }
    throw new Error(`agents never ran ${n} tasks`);
  }

  const pinnedSleep = (a: AgentProcess, taskId: string): TaskInput => ({ taskId, agents: [a.address], target: { host: a.address }, argv: ['sleep', '30'] });

  it('cancels an in-process run: running tasks stopped on the agents, queued ones withdrawn, all reported', async () => {
    const [a, b] = agents as [AgentProcess, AgentProcess];
    const cancel = new AbortController();
    const seen: string[] = [];
    const running = runAndWait(
      { runId: 'cx1', tasks: [pinnedSleep(a, 'a'), pinnedSleep(b, 'b'), pinnedSleep(a, 'queued')] },
      // Concurrency 2: the third task stays in the queue until the cancel withdraws it.
      { settings, signer, connect: connect(), worker: 'always', concurrency: 2, cancel: cancel.signal, onResult: (r) => seen.push(r.taskId) },
    );
    await runningReaches(2);
    cancel.abort();
    const out = await running;
    expect(out.cancelled).toBe(true);
    expect(out.results.get('a')).toMatchObject({ outcome: 'cancelled', reason: 'cancelled', host: a.address, attempts: 1 });
    expect(out.results.get('b')).toMatchObject({ outcome: 'cancelled', reason: 'cancelled', host: b.address, attempts: 1 });
    expect(out.results.get('queued')).toMatchObject({ outcome: 'cancelled', attempts: 0 });
    expect(out.results.get('a')?.durationMs).toBeLessThan(30_000);
    expect(new Set(seen)).toEqual(new Set(['a', 'b', 'queued']));
    expect((await infos()).map((x) => x.running)).toEqual([0, 0]);
    expect(await isCancelled(q.redis, 'cx1')).toBe(true);
  });

  it('a scheduler daemon honours the cancel flag: it Cancels its running tasks on the agents', async () => {
    const daemon = await startSchedulerProcess({ redisUrl: redis.url, stateDir: join(dir, 'd1'), certsDir: pki.clients.scheduler.dir, concurrency: 8 });
    try {
      const [a, b] = agents as [AgentProcess, AgentProcess];
      const cancel = new AbortController();
      const running = runAndWait(
        { runId: 'cx2', tasks: [pinnedSleep(a, 'a'), pinnedSleep(b, 'b')] },
        { settings, signer, worker: 'never', cancel: cancel.signal },
      );
      await runningReaches(2);
      cancel.abort();
      const out = await running;
      expect(out.inProcess).toBe(false);
      expect(out.cancelled).toBe(true);
      for (const t of ['a', 'b']) expect(out.results.get(t)).toMatchObject({ outcome: 'cancelled', reason: 'cancelled', attempts: 1 });
      expect((await infos()).map((x) => x.running)).toEqual([0, 0]);
    } finally {
      daemon.kill('SIGKILL');
      await daemon.exited;
    }
  });

  it('a worker taking a task of a cancelled run never dispatches it, and credits it to no host unless it was pinned to one', async () => {
    const a = agents[0] as AgentProcess;
    const before = await infos();
    const all = agents.map((x) => x.address);
    const enq = await q.enqueueRun(
      {
        runId: 'cx3',
        tasks: [
          { taskId: 't', agents: [a.address], target: { host: a.address }, argv: ['true'] },
          { taskId: 'any', agents: all, target: { any: true }, argv: ['true'] },
        ],
      },
      signer,
    );
    await requestCancel(q.redis, 'cx3');
    const w = SchedulerWorker.start({ settings, connect: connect(), concurrency: 2 });
    try {
      const res = await waitForRun(q.redis, 'cx3', enq.taskIds, { timeoutMs: 20_000 });
      expect(res.results.get('t')).toMatchObject({ outcome: 'cancelled', attempts: 0, host: a.address });
      // A task that could have gone to any agent went to none: no host is named for it.
      expect(res.results.get('any')).toMatchObject({ outcome: 'cancelled', attempts: 0, host: '' });
      expect((await infos()).map((x) => x.started)).toEqual(before.map((x) => x.started));
    } finally {
      await w.drain(5000);
    }
  });

  it('a task handed back while running is not withdrawn; the worker taking it Cancels it on its agent', async () => {
    const a = agents[0] as AgentProcess;
    const enq = await q.enqueueRun({ runId: 'cx4', tasks: [pinnedSleep(a, 't')] }, signer);
    const w1 = SchedulerWorker.start({ settings, connect: connect(), concurrency: 2 });
    await runningReaches(1);
    // Drained with no grace: the job goes back to the queue, the command keeps running.
    await w1.drain(1);
    expect((await infos())[0]?.running).toBe(1);
    await requestCancel(q.redis, 'cx4');
    expect(await q.withdrawIds(enq.jobIds)).toEqual([]);
    const w2 = SchedulerWorker.start({ settings, connect: connect(), concurrency: 2 });
    try {
      const res = await waitForRun(q.redis, 'cx4', enq.taskIds, { timeoutMs: 20_000 });
      const r = res.results.get('t');
      expect(r).toMatchObject({ outcome: 'cancelled', reason: 'cancelled', host: a.address });
      // The agent's own end of the execution the first worker started (attached to, never re-run).
      expect(r?.attached === true || r?.replayed === true).toBe(true);
      expect((await infos()).map((x) => x.running)).toEqual([0, 0]);
    } finally {
      await w2.drain(5000);
    }
  });

  it('a task that ran to its end while no worker held it keeps its real result after a cancel; one that never started is cancelled', async () => {
    const a = agents[0] as AgentProcess;
    const gate = taskGate();
    const ran: TaskInput = { taskId: 'ran', agents: [a.address], target: { host: a.address }, argv: ['sh', '-c', `${gate.wait}; echo done`] };
    const first = await q.enqueueRun({ runId: 'cx6', tasks: [ran] }, signer);
    const w1 = SchedulerWorker.start({ settings, connect: connect(), concurrency: 2 });
    await runningReaches(1);
    // Its worker goes away (handed back); the command ends meanwhile, and the run is cancelled.
    await w1.drain(1);
    gate.open();
    for (let i = 0; i < 200 && (await infos())[0]?.running !== 0; i++) await sleep(50);
    expect((await infos())[0]?.running).toBe(0);
    gate.remove();
    // Another task was taken before (a placement saved) but never reached its agent.
    const second = await q.enqueueRun({ runId: 'cx6', tasks: [{ ...pinnedSleep(a, 'never'), taskId: 'never' }] }, signer);
    const never = await q.queueFor('cx6').getJob(second.jobIds[0] as string);
    await never?.updateData({ ...never.data, dispatch: { placedOn: a.address, round: 0 } });
    const startedBefore = (await infos())[0]?.started;
    await requestCancel(q.redis, 'cx6');
    const w2 = SchedulerWorker.start({ settings, connect: connect(), concurrency: 2 });
    try {
      const res = await waitForRun(q.redis, 'cx6', [...first.taskIds, ...second.taskIds], { timeoutMs: 30_000 });
      // It ran: the agent's own end of it, replayed, never run again.
      expect(res.results.get('ran')).toMatchObject({ outcome: 'succeeded', exitCode: 0, replayed: true, host: a.address });
      expect(Buffer.concat((res.output.get('ran') ?? []).map((c) => c.data)).toString()).toBe('done\n');
      expect(res.results.get('never')).toMatchObject({ outcome: 'cancelled', reason: 'cancelled' });
      expect((await infos())[0]?.started).toBe(startedBefore);
    } finally {
      await w2.drain(5000);
    }
  });

  it('ends a task whose run input is gone as an error (NOT_FOUND), never running it without its stdin', async () => {
    const a = agents[0] as AgentProcess;
    const before = await infos();
    const task = (taskId: string): TaskInput => ({ taskId, agents: [a.address], target: { host: a.address }, argv: ['cat'], input: 'blob' });
    const enq = await q.enqueueRun({ runId: 'in1', tasks: [task('gone')], inputs: { blob: Buffer.from('payload').toString('base64') } }, signer);
    // The blob expires (or is deleted) before a worker takes the task.
    expect(await (q.redis as Redis).del(runInputKey('in1', 'blob'))).toBe(1);
    const w = SchedulerWorker.start({ settings, connect: connect(), concurrency: 2 });
    try {
      const res = await waitForRun(q.redis, 'in1', enq.taskIds, { timeoutMs: 20_000 });
      expect(res.results.get('gone')).toMatchObject({ outcome: 'error', reason: 'NOT_FOUND', attempts: 0 });
      expect((await infos()).map((x) => x.started)).toEqual(before.map((x) => x.started));
      // With the blob present, the same kind of task gets it as stdin.
      const ok = await runAndWait(
        { runId: 'in2', tasks: [task('here')], inputs: { blob: Buffer.from('payload').toString('base64') } },
        { settings, signer, connect: connect(), worker: 'never', timeoutMs: 20_000 },
      );
      expect(ok.results.get('here')?.outcome).toBe('succeeded');
      expect(Buffer.concat((ok.output.get('here') ?? []).map((c) => c.data)).toString()).toBe('payload');
    } finally {
      await w.drain(5000);
    }
  });
});
