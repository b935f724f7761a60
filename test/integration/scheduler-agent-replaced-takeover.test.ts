/**
 * A scheduler daemon killed (-9) after its Exec of a task went out and the task started, then the
 * agent replaced at its address (a new agent with a journal of its own, as `gaxx spawn --fill`
 * puts there): the worker that takes the job over goes back to that address with what the first
 * one saved (`dispatch.sentTo`), and never starts the task on the new agent. It ends `unknown`,
 * pinned or any-host, whether the first worker knew the agent's journal before its Exec or not,
 * and when the worker that takes it over learned the new agent's journal first (from a task of
 * its own there).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { runQueueName } from '../../scheduler/queue/runs.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { KEY_PREFIX } from '../../scheduler/redis/redis.js';
import { markerFile, startAgent, type AgentProcess } from '../helpers/agent.js';
import { eventually } from '../helpers/poll.js';
import { startSchedulerProcess } from '../helpers/scheduler.js';
import { agentStartedTotal, useSchedulerWorld } from '../helpers/scheduler-world.js';

describe('a job taken over after its agent was replaced', () => {
  const world = useSchedulerWorld({ agents: 1, prefix: 'gxrtake-' });

  /** A task that appends a line per start; a second start exits at once, the first waits to be killed. */
  const argv = (f: string): string[] => ['sh', '-c', `echo start >> ${f}; [ "$(wc -l < ${f})" -ge 2 ] || exec sleep 600`];

  it.each([
    ['pinned', 'first'],
    ['any', 'first'],
    ['pinned', 'known'],
    ['any', 'known'],
  ] as const)(
    'a %s task (the Exec the daemon’s %s to the agent) ends unknown, never started on the new agent',
    async (target, warm) => {
      const runId = `rtake${target}${warm}`;
      const victim = world.agents[0] as AgentProcess;
      const log = markerFile('replaced-takeover', `${target}-${warm}.log`);
      const daemon = await startSchedulerProcess({
        redisUrl: world.redis.url,
        stateDir: join(world.dir, `sched-${runId}`),
        certsDir: world.pki.clients.scheduler.dir,
        lockMs: 2000,
      });
      let taker: SchedulerWorker | undefined;
      try {
        if (warm === 'known') {
          // A first task through the daemon: its Started names the agent's journal to the daemon.
          const w = await world.queue.enqueueRun(
            { runId: `${runId}w`, tasks: [{ taskId: 'w', agents: [victim.address], target: { host: victim.address }, argv: ['true'] }] },
            world.signer,
          );
          const warmed = await waitForRun(world.queue.redis, `${runId}w`, w.taskIds, { timeoutMs: 60_000 });
          expect(warmed.results.get('w')?.outcome).toBe('succeeded');
        }
        const enq = await world.queue.enqueueRun(
          {
            runId,
            tasks: [{ taskId: 't', agents: [victim.address], target: target === 'pinned' ? { host: victim.address } : { any: true }, argv: argv(log) }],
          },
          world.signer,
        );
        await eventually(() => readFileSync(log, 'utf8') !== '', 60_000, 20);
        daemon.kill('SIGKILL');
        await daemon.exited;
        victim.kill('SIGKILL');
        await victim.exited;
        const fresh = await startAgent({ certsDir: world.pki.agent.dir, args: ['--listen', victim.address] });
        world.agents[0] = fresh;
        // Takes the job once the daemon's lock on it expired.
        taker = SchedulerWorker.start({
          settings: world.settings,
          runId,
          connect: world.connect(),
          lockDurationMs: 2000,
          breaker: { failureThreshold: 1, openMs: 200, maxOpenMs: 1000 },
          policy: { backoffMaxMs: 300, agentGoneMs: 120_000 },
        });
        const r = (await waitForRun(world.queue.redis, runId, enq.taskIds, { timeoutMs: 120_000 })).results.get('t');
        expect(readFileSync(log, 'utf8')).toBe('start\n');
        expect(await agentStartedTotal(world, fresh)).toBe(0);
        expect({ outcome: r?.outcome, host: r?.host }).toEqual({ outcome: 'unknown', host: victim.address });
        expect(r?.error).toMatch(/replaced.*(it may have run, so it is not run again|so it is not run again)/);
      } finally {
        daemon.kill('SIGKILL');
        await taker?.drain(5000);
      }
    },
    240_000,
  );

  it('an any-host task the daemon sent first to the agent ends unknown though its taker knows the new agent there', async () => {
    const runId = 'rtakelearned';
    const victim = world.agents[0] as AgentProcess;
    const log = markerFile('replaced-takeover', 'learned.log');
    const other = markerFile('replaced-takeover', 'learned-other.log');
    const daemon = await startSchedulerProcess({
      redisUrl: world.redis.url,
      stateDir: join(world.dir, `sched-${runId}`),
      certsDir: world.pki.clients.scheduler.dir,
      lockMs: 2000,
    });
    const q = new Queue(runQueueName(runId), { connection: world.queue.redis, prefix: KEY_PREFIX });
    let taker: SchedulerWorker | undefined;
    try {
      const enq = await world.queue.enqueueRun(
        { runId, tasks: [{ taskId: 't', agents: [victim.address], target: { any: true }, argv: argv(log) }] },
        world.signer,
      );
      await eventually(() => readFileSync(log, 'utf8') !== '', 60_000, 20);
      daemon.kill('SIGKILL');
      await daemon.exited;
      // The job's lock is held here (no worker takes it) until the taker has run a task of its own there.
      const lock = `${q.toKey(`${runId}-t`)}:lock`;
      await world.queue.redis.set(lock, 'held-by-the-test', 'PX', 120_000);
      victim.kill('SIGKILL');
      await victim.exited;
      const fresh = await startAgent({ certsDir: world.pki.agent.dir, args: ['--listen', victim.address] });
      world.agents[0] = fresh;
      taker = SchedulerWorker.start({
        settings: world.settings,
        connect: world.connect(),
        lockDurationMs: 2000,
        breaker: { failureThreshold: 1, openMs: 200, maxOpenMs: 1000 },
        policy: { backoffMaxMs: 300, agentGoneMs: 120_000 },
      });
      // The taker's task on the new agent: its Started names the new agent's journal to the taker.
      const u = await world.queue.enqueueRun(
        { runId: `${runId}u`, tasks: [{ taskId: 'u', agents: [fresh.address], target: { any: true }, argv: ['sh', '-c', `echo start >> ${other}`] }] },
        world.signer,
      );
      expect((await waitForRun(world.queue.redis, `${runId}u`, u.taskIds, { timeoutMs: 60_000 })).results.get('u')?.outcome).toBe('succeeded');
      expect(await q.getActiveCount()).toBe(1);
      await world.queue.redis.del(lock);
      const r = (await waitForRun(world.queue.redis, runId, enq.taskIds, { timeoutMs: 120_000 })).results.get('t');
      expect(readFileSync(log, 'utf8')).toBe('start\n');
      expect(await agentStartedTotal(world, fresh)).toBe(1);
      expect({ outcome: r?.outcome, host: r?.host }).toEqual({ outcome: 'unknown', host: victim.address });
      expect(r?.error).toMatch(/sent to .* before the agent there was known, which restarted or was replaced before it answered .*not run again/);
    } finally {
      daemon.kill('SIGKILL');
      await taker?.drain(5000);
      await q.close();
    }
  }, 240_000);
});
