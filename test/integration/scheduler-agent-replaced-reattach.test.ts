/**
 * A task's stream breaks after its Started while the task runs on, and a new agent (a journal of
 * its own) then answers at the task's address, as when the address is moved to a new machine
 * while the old one still runs the task (here a TCP relay at that address, switched to another
 * agent of the same fleet and host). The scheduler goes back to the address to attach: the new agent refuses the Exec
 * meant for the old one (AGENT_REPLACED), and the task ends `unknown` with why, never started
 * again there, pinned or any-host.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { markerFile, startAgent } from '../helpers/agent.js';
import { agentStartedTotal, useSchedulerWorld } from '../helpers/scheduler-world.js';
import { relayedFleetAgent, startOnceTask } from '../helpers/replaced-agent.js';

describe('a task whose agent was replaced at its address after its Started, its stream broken', () => {
  const world = useSchedulerWorld({ agents: 0, prefix: 'gxrreat-' });

  it.each(['pinned', 'any'] as const)(
    'a %s task ends unknown (the agent there was replaced), and runs on only where it started',
    async (target) => {
      const runId = `rreattach${target}`;
      const log = markerFile('replaced-reattach', `${target}.log`);
      const a = await relayedFleetAgent(world);
      const { old, relay } = a;
      const w = SchedulerWorker.start({
        settings: world.settings,
        connect: world.connect(),
        concurrency: 4,
        breaker: { failureThreshold: 1, openMs: 200, maxOpenMs: 1000 },
        policy: { backoffMaxMs: 300, agentGoneMs: 120_000 },
      });
      try {
        // The first start runs on (its agent is not stopped).
        const { result, live } = await startOnceTask(world, a, runId, target, log);
        // Its output reached the worker, so did its Started (they come in order on one stream).
        await vi.waitFor(() => expect(live()).toContain('running'), { timeout: 60_000, interval: 20 });
        const fresh = await startAgent({ certsDir: world.pki.agent.dir });
        relay.to = fresh;
        relay.cut();
        const r = (await result).results.get('t');
        expect({ outcome: r?.outcome, host: r?.host, startedOn: r?.startedOn }).toEqual({
          outcome: 'unknown',
          host: relay.address,
          startedOn: [relay.address],
        });
        // The new agent's journal is named too when this worker had learned it by then (its Info or a Started).
        expect(r?.error).toMatch(
          /the agent there was replaced before the task's end was read \(agent journal [0-9a-f]{32}(, now [0-9a-f]{32})?\), so it is not run again/,
        );
        expect(readFileSync(log, 'utf8')).toBe('start\n');
        expect(await agentStartedTotal(world, fresh)).toBe(0);
        expect(await agentStartedTotal(world, old)).toBe(1);
      } finally {
        await w.drain(5000);
        await relay.close();
      }
    },
    240_000,
  );
});
