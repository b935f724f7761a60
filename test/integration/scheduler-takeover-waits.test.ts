/**
 * A worker that takes a job over (its first worker drained and handed it back, or died) goes on
 * with the bounded waits the first one began, rather than begin them again: a task whose agent
 * went away while it ran ends `unknown` once `agentGoneMs` passed since the agent went away, not
 * since the takeover. The job records each wait's start (`dispatch.waits`). Real agents, a real
 * redis-server, two in-process workers.
 */
import { readFileSync } from 'node:fs';
import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { runLiveKey } from '../../scheduler/queue/live.js';
import { runDoneKey } from '../../scheduler/queue/results.js';
import { runQueueName } from '../../scheduler/queue/runs.js';
import { jobIdFor, type TaskSpec } from '../../scheduler/queue/task.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { KEY_PREFIX } from '../../scheduler/redis/redis.js';
import { markerFile, type AgentProcess } from '../helpers/agent.js';
import { eventually } from '../helpers/poll.js';
import { useSchedulerWorld } from '../helpers/scheduler-world.js';

/** How long the wait had lasted when the first worker handed the job back: more than the taker's whole agentGoneMs. */
const WAITED_MS = 6000;
const TAKER_GONE_MS = 5000;

describe('a job taken over while its task waits for its agent to come back', () => {
  const world = useSchedulerWorld({ agents: 1, prefix: 'gxtwait-' });

  it('ends when the wait the first worker began is over, not one begun again by the taker', async () => {
    const runId = 'twaitgone';
    const victim = world.agents[0] as AgentProcess;
    const log = markerFile('takeover-waits', 'gone.log');
    const q = new Queue(runQueueName(runId), { connection: world.queue.redis, prefix: KEY_PREFIX });
    const worker = (agentGoneMs: number) =>
      SchedulerWorker.start({
        settings: world.settings,
        runId,
        connect: world.connect(),
        lockDurationMs: 2000,
        breaker: { failureThreshold: 1, openMs: 200, maxOpenMs: 1000 },
        policy: { backoffMaxMs: 300, agentGoneMs },
      });
    const first = worker(120_000);
    let taker: SchedulerWorker | undefined;
    try {
      const enq = await world.queue.enqueueRun(
        {
          runId,
          tasks: [
            {
              taskId: 't',
              agents: [victim.address],
              target: { host: victim.address },
              argv: ['sh', '-c', `echo started; echo start >> ${log}; exec sleep 600`],
            },
          ],
        },
        world.signer,
      );
      await eventually(() => readFileSync(log, 'utf8') !== '', 60_000, 20);
      // The first worker has the task's start (its output, which the agent sends after it, is
      // published live): killed any earlier, the agent may leave it no word that the task started.
      expect(await eventually(async () => Number(await world.queue.redis.hget(runLiveKey(runId), 't')) > 0, 60_000, 20)).toBe(true);
      victim.kill('SIGKILL');
      await victim.exited;
      // The first worker records since when it waits for the agent.
      let since = 0;
      const recorded = async (): Promise<boolean> => {
        const job = await q.getJob(jobIdFor(runId, 't'));
        const gone = (job?.data as TaskSpec | undefined)?.dispatch?.waits?.gone;
        if (gone?.address === victim.address) since = gone.since;
        return since > 0;
      };
      expect(await eventually(recorded, 60_000, 20)).toBe(true);
      // Handed back once its wait lasted longer than the taker's whole agentGoneMs.
      expect(await eventually(() => Date.now() - since >= WAITED_MS, 60_000, 50)).toBe(true);
      await first.drain(0);
      // Handed back, not ended by the draining worker (its BullMQ fetch may hand it the job again:
      // it hands that back at once too, rather than wait on for the agent with nothing to stop it).
      expect(await world.queue.redis.hget(runDoneKey(runId), 't')).toBeNull();
      expect(await q.getJobState(jobIdFor(runId, 't'))).not.toBe('active');
      taker = worker(TAKER_GONE_MS);
      const r = (await waitForRun(world.queue.redis, runId, enq.taskIds, { timeoutMs: 120_000 })).results.get('t');
      expect({ outcome: r?.outcome, host: r?.host, startedOn: r?.startedOn }).toEqual({
        outcome: 'unknown',
        host: victim.address,
        startedOn: [victim.address],
      });
      // The wait it reports is the one the first worker began (a wait begun again by the taker would say 5 s).
      const waited = Number(/unreachable for (\d+) s/.exec(r?.error ?? '')?.[1]);
      expect(waited, r?.error).toBeGreaterThanOrEqual(WAITED_MS / 1000);
      expect(readFileSync(log, 'utf8')).toBe('start\n');
    } finally {
      await first.drain(0);
      await taker?.drain(5000);
      await q.close();
    }
  }, 240_000);
});
