/**
 * A worker that loses its lock on jobs it took but had not dispatched yet (they waited for a free
 * slot): the scheduler daemon (its own process, lock 2 s) is stopped (SIGSTOP) past its locks,
 * a worker in this process takes the run over and runs every task; the daemon, continued, must
 * dispatch none of them again (it used to place the waiting ones from its stale copy of the job,
 * on whichever agent was free: they ran on both agents, and each result said it ran once).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { runQueueName } from '../../scheduler/queue/runs.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { KEY_PREFIX } from '../../scheduler/redis/redis.js';
import { auditEvents, markerFile, startAgent, type AgentProcess } from '../helpers/agent.js';
import { eventually } from '../helpers/poll.js';
import { startSchedulerProcess } from '../helpers/scheduler.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

describe('a worker whose job locks are lost', () => {
  let world: SchedulerWorld;
  let agents: AgentProcess[];

  beforeAll(async () => {
    world = await startSchedulerWorld({ agents: 0, prefix: 'gxl-' });
    agents = await Promise.all([0, 1].map(() => startAgent({ certsDir: world.pki.agent.dir, args: ['--capacity', '4'] })));
  });
  afterAll(async () => {
    await world?.close();
  });

  const lines = (f: string): string[] => readFileSync(f, 'utf8').split('\n').filter(Boolean);

  it('dispatches none of the jobs another worker took over: each task runs once, and its result says so', async () => {
    const runId = 'lockloss1';
    const ran = markerFile('sched-lock-loss', 'ran.log');
    const release = join(dirname(ran), 'lockloss.release');
    // 16 tasks, 8 slots (4 per agent): 8 run until released, 8 wait in the daemon for a slot.
    const enq = await world.queue.enqueueRun(
      {
        runId,
        tasks: Array.from({ length: 16 }, (_, i) => ({
          taskId: `t${i}`,
          agents: agents.map((a) => a.address),
          target: { any: true as const },
          argv: ['sh', '-c', 'echo "$0" >> "$1"; while [ ! -e "$2" ]; do sleep 0.05; done', `${runId}-t${i}`, ran, release],
        })),
      },
      world.signer,
    );
    const jobIds = enq.taskIds.map((t) => `${runId}-${t}`);
    const q = new Queue(runQueueName(runId), { connection: world.queue.redis, prefix: KEY_PREFIX });
    const daemon = await startSchedulerProcess({
      redisUrl: world.redis.url,
      stateDir: join(world.dir, 'sched-state'),
      certsDir: world.pki.clients.scheduler.dir,
      concurrency: 16,
      lockMs: 2000,
    });
    let taker: SchedulerWorker | undefined;
    try {
      // The daemon holds all 16 jobs: 8 running on the agents, 8 waiting for a slot.
      expect(await eventually(async () => lines(ran).length === 8 && (await q.getActiveCount()) === 16, 60_000, 50)).toBe(true);
      daemon.kill('SIGSTOP');
      // Another worker takes every job over once the daemon's locks expire (each job taken twice).
      taker = SchedulerWorker.start({ settings: world.settings, runId, connect: world.connect(), concurrency: 16, lockDurationMs: 2000 });
      expect(
        await eventually(async () => (await Promise.all(jobIds.map((id) => q.getJob(id)))).every((j) => (j?.attemptsStarted ?? 0) >= 2), 60_000, 100),
      ).toBe(true);
      // It attached to the 8 running; released, they end, and it runs the other 8 itself.
      writeFileSync(release, '');
      const res = await waitForRun(world.queue.redis, runId, enq.taskIds, { timeoutMs: 120_000 });
      expect(lines(ran)).toHaveLength(16);

      daemon.kill('SIGCONT');
      // The daemon finds every one of its 16 jobs another worker's and leaves it (a task it
      // dispatched again would run at once: the release is there).
      const lost = (): number =>
        daemon
          .stderr()
          .split('\n')
          .filter((l) => l.includes('"lost the lock on a job')).length;
      await eventually(() => lost() >= 16 || lines(ran).length > 16, 60_000, 50);
      expect(lines(ran).sort()).toEqual([...jobIds].sort());
      expect(lost()).toBeGreaterThanOrEqual(16);

      // The agents agree: one execution of each task, and the result names its agent.
      const startedOn = new Map<string, string[]>();
      for (const a of agents)
        for (const e of auditEvents(a.auditLog))
          if (e.event === 'exec_started') startedOn.set(e.taskId as string, [...(startedOn.get(e.taskId as string) ?? []), a.address]);
      expect([...startedOn.keys()].sort()).toEqual([...jobIds].sort());
      for (const [taskId, r] of res.results) {
        const on = startedOn.get(`${runId}-${taskId}`);
        expect({ taskId, on, startedOn: r.startedOn, mayHaveRepeated: r.mayHaveRepeated, outcome: r.outcome }).toEqual({
          taskId,
          on: [r.host],
          startedOn: [r.host],
          mayHaveRepeated: false,
          outcome: 'succeeded',
        });
      }
    } finally {
      daemon.kill('SIGCONT');
      await taker?.drain(5000);
      await q.close();
    }
  }, 300_000);
});
