/**
 * A run cancelled while the agent one of its tasks may have started on was replaced at its
 * address (a new agent with a journal of its own, as `gaxx spawn --fill` puts there), before the
 * worker went back there: the cancel asks the new agent, which does not know the task and cannot
 * say whether the one it replaced ran it. The task ends `unknown`, naming the replacement, never
 * `cancelled` ("before the task ran"), and the cancel never starts it on the new agent.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { requestCancel } from '../../scheduler/queue/cancel.js';
import { waitForRun, type RunResults } from '../../scheduler/queue/wait.js';
import { markerFile, startAgent, type AgentProcess } from '../helpers/agent.js';
import { eventually } from '../helpers/poll.js';
import { agentStartedTotal, useSchedulerWorld } from '../helpers/scheduler-world.js';

describe('a run cancelled while its task’s agent was replaced', () => {
  const world = useSchedulerWorld({ agents: 1, prefix: 'gxrcan-' });

  /** A task that appends a line per start; a second start exits at once, the first waits to be killed. */
  const argv = (f: string): string[] => ['sh', '-c', `echo start >> ${f}; [ "$(wc -l < ${f})" -ge 2 ] || exec sleep 600`];

  it.each(['pinned', 'any'] as const)(
    'a %s task that started on the agent ends unknown, and the new agent never runs it',
    async (target) => {
      const runId = `rcancel${target}`;
      const victim = world.agents[0] as AgentProcess;
      const log = markerFile('replaced-cancel', `${target}.log`);
      const w = SchedulerWorker.start({
        settings: world.settings,
        connect: world.connect(),
        concurrency: 4,
        // Its breaker stays open long after the agent went away: the worker does not go back
        // there on its own before the cancel (it would find the replacement then, another path).
        breaker: { failureThreshold: 1, openMs: 120_000, maxOpenMs: 120_000 },
        policy: { backoffMaxMs: 300, agentGoneMs: 120_000 },
      });
      try {
        const enq = await world.queue.enqueueRun(
          {
            runId,
            tasks: [
              {
                taskId: 't',
                agents: [victim.address],
                target: target === 'pinned' ? { host: victim.address } : { any: true },
                argv: argv(log),
              },
            ],
          },
          world.signer,
        );
        const notes: string[] = [];
        const result: Promise<RunResults> = waitForRun(world.queue.redis, runId, enq.taskIds, {
          timeoutMs: 120_000,
          onNote: (_t, text) => notes.push(text),
        });
        await eventually(() => readFileSync(log, 'utf8') !== '', 60_000, 20);
        victim.kill('SIGKILL');
        await victim.exited;
        // The worker saw the agent go (its note) and waits for it, its breaker open.
        await vi.waitFor(() => expect(notes.some((n) => n.includes(`${victim.address} went away while the task ran there`))).toBe(true), {
          timeout: 60_000,
          interval: 20,
        });
        const fresh = await startAgent({ certsDir: world.pki.agent.dir, args: ['--listen', victim.address] });
        world.agents[0] = fresh;
        await requestCancel(world.queue.redis, runId);
        const r = (await result).results.get('t');
        expect({ outcome: r?.outcome, host: r?.host, startedOn: r?.startedOn }).toEqual({
          outcome: 'unknown',
          host: victim.address,
          startedOn: [victim.address],
        });
        expect(r?.error).toMatch(/^run cancelled; .*replaced.*not run again/);
        expect(readFileSync(log, 'utf8')).toBe('start\n');
        expect(await agentStartedTotal(world, fresh)).toBe(0);
      } finally {
        await w.drain(5000);
      }
    },
    240_000,
  );
});
