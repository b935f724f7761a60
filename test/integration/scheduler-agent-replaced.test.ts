/**
 * An agent killed while a task runs on it, replaced at the same address by a new agent with a
 * journal of its own (as `gaxx spawn --fill` does): the scheduler goes back to that address for
 * the task it saw start there, and the new agent does not know it. The task ends `unknown`
 * (started there, outcome lost) and is never started again, pinned or any-host; a task that
 * never started there runs on the new agent as usual.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { markerFile, startAgent, type AgentProcess } from '../helpers/agent.js';
import { eventually } from '../helpers/poll.js';
import { agentStartedTotal, useSchedulerWorld } from '../helpers/scheduler-world.js';

describe('an agent replaced at its address while a task runs there', () => {
  const world = useSchedulerWorld({ agents: 1, prefix: 'gxrepl-' });

  it('ends the tasks that started there unknown and never runs them again; a task that had not started runs', async () => {
    const victim = world.agents[0] as AgentProcess;
    // Each task appends a line per start; a second start of it exits at once (so a repeat ends
    // the run quickly rather than hanging), the first waits to be killed with its agent.
    const argv = (f: string): string[] => ['sh', '-c', `echo start >> ${f}; [ "$(wc -l < ${f})" -ge 2 ] || exec sleep 600`];
    const pinnedLog = markerFile('replaced', 'pinned.log');
    const anyLog = markerFile('replaced', 'any.log');
    const later = markerFile('replaced', 'later.log');
    const w = SchedulerWorker.start({
      settings: world.settings,
      connect: world.connect(),
      concurrency: 8,
      breaker: { failureThreshold: 1, openMs: 200, maxOpenMs: 1000 },
      // Long enough that the replacement is back before the wait for the gone agent ends.
      policy: { backoffMaxMs: 300, agentGoneMs: 120_000 },
    });
    try {
      const enq = await world.queue.enqueueRun(
        {
          runId: 'replaced',
          tasks: [
            { taskId: 'pinned', agents: [victim.address], target: { host: victim.address }, argv: argv(pinnedLog) },
            { taskId: 'any', agents: [victim.address], target: { any: true }, argv: argv(anyLog) },
          ],
        },
        world.signer,
      );
      // Both started (an event each task writes), then the agent is killed with them.
      await eventually(() => readFileSync(pinnedLog, 'utf8') !== '' && readFileSync(anyLog, 'utf8') !== '', 60_000, 20);
      victim.kill('SIGKILL');
      await victim.exited;
      // A new agent at the same address, with a data dir (and journal) of its own.
      const fresh = await startAgent({ certsDir: world.pki.agent.dir, args: ['--listen', victim.address] });
      world.agents[0] = fresh;
      expect(fresh.dataDir).not.toBe(victim.dataDir);
      const res = await waitForRun(world.queue.redis, 'replaced', enq.taskIds, { timeoutMs: 120_000 });
      for (const id of ['pinned', 'any']) {
        const r = res.results.get(id);
        expect({ id, outcome: r?.outcome, host: r?.host, startedOn: r?.startedOn }).toEqual({
          id,
          outcome: 'unknown',
          host: victim.address,
          startedOn: [victim.address],
        });
        expect(r?.error).toMatch(/was replaced before the task's end was read .*not run again/);
      }
      expect(readFileSync(pinnedLog, 'utf8')).toBe('start\n');
      expect(readFileSync(anyLog, 'utf8')).toBe('start\n');
      expect(await agentStartedTotal(world, fresh)).toBe(0);
      // The new agent takes new work as any agent does.
      const next = await world.queue.enqueueRun(
        {
          runId: 'replaced2',
          tasks: [{ taskId: 'later', agents: [fresh.address], target: { host: fresh.address }, argv: ['sh', '-c', `echo start >> ${later}`] }],
        },
        world.signer,
      );
      const res2 = await waitForRun(world.queue.redis, 'replaced2', next.taskIds, { timeoutMs: 60_000 });
      expect(res2.results.get('later')?.outcome).toBe('succeeded');
      expect(readFileSync(later, 'utf8')).toBe('start\n');
    } finally {
      await w.drain(5000);
    }
  }, 240_000);
});
