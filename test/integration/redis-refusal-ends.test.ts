// Every run ends, with a result for every task, however Redis refuses its writes:
// - a refusal episode is not ended by a write probe that gets through now and then (a Redis at its
//   memory limit takes a tiny probe while every result write is refused): the wait's bound fires;
// - a task whose job's attempts ran out without a published result (the failed set) gets one from
//   whoever reads the run (`runs wait`, `--resume`, gaxx run), saying it failed and will not run
//   again; a wait that ends early says so for it, never "queued";
// - a result whose output start was lost (the agent replays only its last 64 KiB) says so, and
//   names the agent it ran on.
import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resumeRun, runAndWait } from '../../scheduler/index.js';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { buildRequest } from '../../scheduler/dispatch/task-dispatch.js';
import { createRedis, KEY_PREFIX } from '../../scheduler/redis/redis.js';
import { runQueueName } from '../../scheduler/queue/runs.js';
import { parseTaskSpec } from '../../scheduler/queue/task.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { eventually } from '../helpers/poll.js';
import { refuseWrites as refuseRedisWrites } from '../helpers/redis.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

let w: SchedulerWorld;
/** The bound on a refusal in these tests (the default is 60 s). */
const GONE_MS = 3000;

beforeAll(async () => {
  w = await startSchedulerWorld({ agents: 1, prefix: 'gxrf-' });
});

afterAll(async () => {
  await w?.redis.destroy().catch(() => undefined);
  await w?.close();
});

/** Makes Redis refuse every write that may use memory (OOM), or take them again. */
const refuseWrites = (on: boolean): Promise<void> => refuseRedisWrites(w.queue.redis, on);

/**
 * Fails every attempt of the run's jobs as a worker whose result writes Redis refused does, and
 * publishes nothing: the jobs end in the failed set, without a result.
 */
async function failJobs(runId: string, jobIds: string[]): Promise<void> {
  const bw = new Worker(
    runQueueName(runId),
    () => {
      throw new Error("OOM command not allowed when used memory > 'maxmemory'.");
    },
    { connection: createRedis(w.settings, 'worker'), prefix: KEY_PREFIX },
  );
  bw.on('error', () => undefined);
  try {
    const q = w.queue.queueFor(runId);
    const failed = async (): Promise<boolean> => (await Promise.all(jobIds.map(async (id) => (await q.getJob(id))?.finishedOn !== undefined))).every(Boolean);
    expect(await eventually(failed, 30_000)).toBe(true);
  } finally {
    await bw.close();
    await bw.disconnect();
  }
}

describe('Redis refusing writes: every run ends', () => {
  it('a probe that gets through now and then does not restart the bound: the wait ends REDIS_UNAVAILABLE', async () => {
    const agents = w.agents.map((a) => a.address);
    const notes: string[] = [];
    // Redis takes writes each time the wait reports a refusal, and refuses them again each time
    // it says they are taken: writes get through now and then, yet the run never can progress.
    const flap = (down: boolean, refused: string | undefined): void => {
      if (refused === undefined) return;
      notes.push(down ? 'refused' : 'taken');
      void refuseWrites(!down);
    };
    try {
      const out = await runAndWait(
        { runId: 'refflap1', tasks: [{ taskId: '1', agents, target: { any: true }, argv: ['true'] }] },
        {
          settings: w.settings,
          signer: w.signer,
          // As with a daemon that cannot publish: nothing of the run lands.
          worker: 'never',
          redisGoneMs: GONE_MS,
          // Far beyond the bound: without it the wait would end here, or never.
          timeoutMs: 60_000,
          onStart: () => void refuseWrites(true),
          onRedis: (down, _ms, refused) => flap(down, refused),
        },
      );
      expect(notes[0]).toBe('refused');
      expect(out.ended).toMatchObject({ code: 'REDIS_UNAVAILABLE', refused: expect.stringMatching(/^OOM/) });
      expect([...out.results.values()]).toEqual([expect.objectContaining({ outcome: 'unknown', reason: 'REDIS_UNAVAILABLE' })]);
    } finally {
      await refuseWrites(false);
    }
  }, 120_000);

  it('a job whose attempts ran out without a result: the reader publishes its result and the run ends', async () => {
    const agent = w.agents[0]?.address as string;
    const enq = await w.queue.enqueueRun(
      {
        runId: 'reffailed1',
        tasks: [
          { taskId: '1', agents: [agent], target: { host: agent }, argv: ['true'] },
          { taskId: '2', agents: [agent], target: { host: agent }, argv: ['true'] },
        ],
      },
      w.signer,
    );
    await failJobs('reffailed1', enq.jobIds);
    // `runs wait` / `--resume` / gaxx run: the wait for the run ends (it used to wait for ever).
    const res = await waitForRun(w.queue.redis, 'reffailed1', enq.taskIds, { timeoutMs: 30_000 });
    for (const r of res.results.values()) {
      expect(r).toMatchObject({ outcome: 'unknown', reason: 'REDIS_UNAVAILABLE', host: agent });
      expect(r.error).toMatch(/failed after 3 attempts and will not run again: OOM/);
    }
    // Published once per task: a second reader reads the same results.
    const again = await resumeRun('reffailed1', { settings: w.settings, signer: w.signer, connect: w.connect() });
    expect(again.ended).toBeUndefined();
    expect([...again.results.values()].map((r) => r.outcome)).toEqual(['unknown', 'unknown']);
  }, 120_000);

  it('a wait that ends while Redis refuses writes reports a failed job as failed, not queued', async () => {
    const agent = w.agents[0]?.address as string;
    const enq = await w.queue.enqueueRun({ runId: 'reffailed2', tasks: [{ taskId: '1', agents: [agent], target: { host: agent }, argv: ['true'] }] }, w.signer);
    await failJobs('reffailed2', enq.jobIds);
    try {
      await refuseWrites(true);
      const out = await resumeRun('reffailed2', { settings: w.settings, signer: w.signer, worker: 'never', redisGoneMs: GONE_MS, timeoutMs: 60_000 });
      expect(out.ended).toMatchObject({ code: 'REDIS_UNAVAILABLE', failed: 1 });
      const r = out.results.get('1');
      expect(r).toMatchObject({ outcome: 'unknown', reason: 'REDIS_UNAVAILABLE' });
      expect(r?.error).toMatch(/will not run again/);
      expect(r?.error).not.toMatch(/queued/);
    } finally {
      await refuseWrites(false);
    }
  }, 120_000);

  it("a result read back from the agent without its output's start says so and names the agent", async () => {
    const agent = w.agents[0]?.address as string;
    // 200 KB of output: more than the agent's replay buffer keeps (64 KiB).
    const enq = await w.queue.enqueueRun(
      {
        runId: 'reflost1',
        tasks: [{ taskId: '1', agents: [agent], target: { any: true }, argv: ['sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x; echo; echo done'] }],
      },
      w.signer,
    );
    // A first dispatch ran it there and its result never reached Redis (as when Redis refused the write).
    const job = await w.queue.queueFor('reflost1').getJob(enq.jobIds[0] as string);
    const spec = parseTaskSpec(job?.data);
    const link = w.connect()({ address: agent });
    for await (const ev of link.exec(buildRequest(spec, undefined, enq.jobIds[0] as string))) if (ev.exit) break;
    await job?.updateData({ ...spec, dispatch: { placedOn: agent, round: 0 } });

    const worker = SchedulerWorker.start({ settings: w.settings, connect: w.connect(), runId: 'reflost1' });
    try {
      const res = await waitForRun(w.queue.redis, 'reflost1', enq.taskIds, { timeoutMs: 60_000 });
      const r = res.results.get('1');
      expect(r).toMatchObject({ outcome: 'succeeded', replayed: true, outputLost: true, truncated: true, startedOn: [agent] });
      const out = Buffer.concat((res.output.get('1') ?? []).map((c) => c.data)).toString();
      // What the agent still held of it (its replay buffer: the end, at most 64 KiB; none once it
      // let the finished task's output go), and the error says exactly how much that was.
      expect(r?.error).toContain(`start of its output was lost`);
      expect(r?.error).toContain(`only the agent's last ${out.length} of 200006 bytes were kept`);
      if (out.length > 0) expect(out.endsWith('done\n')).toBe(true);
      expect(out.length).toBeLessThan(200_006);
    } finally {
      await worker.drain(1000);
    }
  }, 120_000);
});
