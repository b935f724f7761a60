/**
 * A run cancelled while its task's Exec stream is open, at the moment the agent running the task
 * goes away: the agent is stopped (it reads neither the Cancel nor anything else), then killed,
 * and a new agent (a journal of its own) answers at the task's address (a TCP relay there,
 * switched to it). The stream ends without the task's exit and the Cancel never reached the
 * agent that ran the task: nobody confirmed a stop. The worker goes back to the address; the new
 * agent refuses the existing-only Exec meant for the old one (AGENT_REPLACED), and the task ends
 * `unknown` with why, never `cancelled`, and never started on the new agent. When the same agent
 * is there (only the connection broke), the worker asks it again and publishes its own end.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { requestCancel } from '../../scheduler/queue/cancel.js';
import { markerFile, startAgent, type AgentProcess } from '../helpers/agent.js';
import { eventually } from '../helpers/poll.js';
import { agentStartedTotal, useSchedulerWorld } from '../helpers/scheduler-world.js';
import { relayedFleetAgent, startOnceTask, watchingExec } from '../helpers/replaced-agent.js';
import { sentSince, type RelayedConnection, type TcpRelay } from '../helpers/tcp-relay.js';

describe('a run cancelled while its task’s stream is open and its agent goes away, replaced', () => {
  const world = useSchedulerWorld({ agents: 0, prefix: 'gxrcstr-' });

  /**
   * Runs a task on an agent behind a relay; once it runs, the agent is stopped and the run
   * cancelled, and once the stream's Cancel went out to the stopped agent (which never reads it),
   * `after` breaks the stream (it kills the agent, or cuts the relay). Returns the task's result,
   * the relay, and the log (a line per start).
   */
  async function cancelledAsItBreaks(runId: string, target: 'pinned' | 'any', after: (old: AgentProcess, relay: TcpRelay) => Promise<void>) {
    const log = markerFile('replaced-cancel-stream', `${runId}.log`);
    const a = await relayedFleetAgent(world);
    const { old, relay } = a;
    /** The connections to the old agent when it was stopped. */
    let held: RelayedConnection[] | undefined;
    /** Whether the stream's Cancel went out on one of them: bytes came on it after the stop signal. */
    let cancelSent: (() => boolean) | undefined;
    const inner = world.connect();
    const w = SchedulerWorker.start({
      settings: world.settings,
      // Told when the stop signal of one of its Execs fires (before the stream sends its Cancel).
      connect: (ep) =>
        watchingExec(inner(ep), (opts) =>
          opts?.signal?.addEventListener(
            'abort',
            () => {
              if (held) cancelSent ??= sentSince(held);
            },
            { once: true },
          ),
        ),
      concurrency: 4,
      breaker: { failureThreshold: 1, openMs: 200, maxOpenMs: 1000 },
      policy: { backoffMaxMs: 300, agentGoneMs: 120_000 },
    });
    try {
      const { result, live } = await startOnceTask(world, a, runId, target, log);
      // Its output reached the worker, so did its Started (they come in order on one stream).
      expect(await eventually(() => live().includes('running'), 60_000, 20)).toBe(true);
      old.kill('SIGSTOP');
      held = relay.connections();
      expect(held).not.toEqual([]);
      await requestCancel(world.queue.redis, runId);
      expect(await eventually(() => cancelSent?.() === true, 60_000, 20)).toBe(true);
      await after(old, relay);
      const r = (await result).results.get('t');
      return { r, relay, starts: readFileSync(log, 'utf8') };
    } finally {
      await w.drain(5000);
      await relay.close();
    }
  }

  it.each(['pinned', 'any'] as const)(
    'a %s task ends unknown (the agent there was replaced), not cancelled, and the new agent never runs it',
    async (target) => {
      let fresh: AgentProcess | undefined;
      const { r, relay, starts } = await cancelledAsItBreaks(`rcstream${target}`, target, async (old, relay) => {
        // The address now leads to a new agent, and the old one dies: the stream and its Cancel break.
        fresh = await startAgent({ certsDir: world.pki.agent.dir });
        relay.to = fresh;
        old.kill('SIGKILL');
        await old.exited;
      });
      expect({ outcome: r?.outcome, host: r?.host, startedOn: r?.startedOn }).toEqual({
        outcome: 'unknown',
        host: relay.address,
        startedOn: [relay.address],
      });
      // The new agent's journal is named too when this worker had learned it by then.
      expect(r?.error).toMatch(
        /^run cancelled; the agent there was replaced before the task's end was read \(agent journal [0-9a-f]{32}(, now [0-9a-f]{32})?\), so it is not run again/,
      );
      expect(starts).toBe('start\n');
      expect(await agentStartedTotal(world, fresh as AgentProcess)).toBe(0);
    },
    240_000,
  );

  it('the same agent, its Cancel lost with the stream: the worker asks it again and publishes its own end of the task', async () => {
    const { r, relay, starts } = await cancelledAsItBreaks('rcstreamsame', 'pinned', async (old, relay) => {
      // The connection carrying the stream and the Cancel breaks; the agent goes on.
      relay.cut();
      old.kill('SIGCONT');
    });
    expect({ outcome: r?.outcome, reason: r?.reason, host: r?.host, startedOn: r?.startedOn }).toEqual({
      outcome: 'cancelled',
      reason: 'cancelled',
      host: relay.address,
      startedOn: [relay.address],
    });
    expect(r?.signal).toBeTruthy();
    expect(r?.attached || r?.replayed).toBe(true);
    expect(starts).toBe('start\n');
  }, 240_000);
});
