/**
 * An agent that received a task's Exec and never answered it (stopped, then killed before it
 * said Started): the scheduler goes back to its address. When a new agent with a journal of its
 * own took that address (as `gaxx spawn --fill` does), the task ends `unknown` (sent there, which
 * was replaced before it answered: it may have run) and is never started on the new agent; when
 * the same agent restarted (its journal kept), it still runs there, once, as before.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { markerFile, startAgent, type AgentProcess } from '../helpers/agent.js';
import { eventually } from '../helpers/poll.js';
import { agentInfo, agentStartedTotal, useSchedulerWorld } from '../helpers/scheduler-world.js';
import { watchingExec } from '../helpers/replaced-agent.js';
import { sentSince, TcpRelay, type RelayedConnection } from '../helpers/tcp-relay.js';

describe('an agent replaced at its address after it received an Exec it never answered', () => {
  const world = useSchedulerWorld({ agents: 1, prefix: 'gxunans-' });

  /**
   * Runs a task (one start appends a line to `log`) while the agent it goes to is stopped: once
   * its Exec reached the agent's socket, the agent is killed and `next` starts at its address.
   * The worker's connection to the agent is up before: made by a first task (`warm: 'task'`, its
   * Started names the agent's journal), or by a Health call alone (`'connection'`: the task's
   * Exec is the first this worker sends there). Returns the task's result.
   */
  async function unanswered(
    runId: string,
    log: string,
    target: 'pinned' | 'any',
    warm: 'task' | 'connection',
    next: (victim: AgentProcess) => Promise<AgentProcess>,
  ) {
    const victim = world.agents[0] as AgentProcess;
    const inner = world.connect();
    // The link the worker's pool takes for the victim: its connection made beforehand (as a
    // warming connector hands one out), without an Exec. It goes through a relay, which tells
    // the bytes sent on it from those on any other connection to the agent's port.
    const relay = await new TcpRelay(victim).start();
    const first = inner({ address: relay.address });
    if (warm === 'connection') expect(await first.health()).toBe('SERVING');
    /** That link's connections open when the agent was stopped (one opened after never gets past its TLS handshake). */
    let held: RelayedConnection[] | undefined;
    /** Whether the task's Exec went out on one of them: bytes came on it after the Exec began. */
    let execSent: (() => boolean) | undefined;
    let handed = false;
    const w = SchedulerWorker.start({
      settings: world.settings,
      connect: (ep) => {
        if (handed || ep.address !== victim.address) return inner(ep);
        handed = true;
        return watchingExec(first, () => {
          if (held) execSent ??= sentSince(held);
        });
      },
      concurrency: 4,
      breaker: { failureThreshold: 1, openMs: 200, maxOpenMs: 1000 },
      // Long enough that the next agent is there before the wait for the gone one ends.
      policy: { backoffMaxMs: 300, agentGoneMs: 120_000 },
    });
    try {
      if (warm === 'task') {
        // A first task: the worker's connection to the agent is up (a request then goes out at once).
        const enq = await world.queue.enqueueRun(
          { runId: `${runId}w`, tasks: [{ taskId: 'warm', agents: [victim.address], target: { host: victim.address }, argv: ['true'] }] },
          world.signer,
        );
        const warmed = await waitForRun(world.queue.redis, `${runId}w`, enq.taskIds, { timeoutMs: 60_000 });
        expect(warmed.results.get('warm')?.outcome).toBe('succeeded');
      }
      victim.kill('SIGSTOP');
      held = relay.connections();
      expect(held).not.toEqual([]);
      const enq = await world.queue.enqueueRun(
        {
          runId,
          tasks: [
            {
              taskId: 't',
              agents: [victim.address],
              target: target === 'pinned' ? { host: victim.address } : { any: true },
              argv: ['sh', '-c', `echo start >> ${log}`],
            },
          ],
        },
        world.signer,
      );
      // The Exec went out on the connection made beforehand, to the stopped agent, which reads
      // nothing: nothing came back. (Bytes on another connection to its port say nothing of the
      // Exec: a client the worker closed while it could not connect, such as a probe of the
      // previous case's agent while it was down, may connect there once more a second later.)
      expect(await eventually(() => execSent?.() === true, 60_000, 20)).toBe(true);
      victim.kill('SIGKILL');
      await victim.exited;
      world.agents[0] = await next(victim);
      const res = await waitForRun(world.queue.redis, runId, enq.taskIds, { timeoutMs: 120_000 });
      return res.results.get('t');
    } finally {
      await w.drain(5000);
      await relay.close();
    }
  }

  it('ends the task unknown and never starts it on a new agent (another journal) at that address', async () => {
    const before = (await agentInfo(world, world.agents[0] as AgentProcess)).journalId;
    const log = markerFile('unanswered', 'replaced.log');
    const r = await unanswered('unansrepl', log, 'pinned', 'task', async (victim) => {
      // A new agent at the same address, with a data dir (and journal) of its own.
      const fresh = await startAgent({ certsDir: world.pki.agent.dir, args: ['--listen', victim.address] });
      expect(fresh.dataDir).not.toBe(victim.dataDir);
      return fresh;
    });
    const fresh = world.agents[0] as AgentProcess;
    expect({ outcome: r?.outcome, host: r?.host, startedOn: r?.startedOn }).toEqual({ outcome: 'unknown', host: fresh.address, startedOn: [] });
    expect(r?.error).toMatch(/sent to .*, which was replaced before it answered .*it may have run, so it is not run again/);
    expect(readFileSync(log, 'utf8')).toBe('');
    const now = await agentInfo(world, fresh);
    expect(Number(now.tasksStartedTotal)).toBe(0);
    expect(now.journalId).toMatch(/^[0-9a-f]{32}$/);
    expect(now.journalId).not.toBe(before);
  }, 240_000);

  it('runs the task, once, on the same agent restarted with its journal', async () => {
    const before = (await agentInfo(world, world.agents[0] as AgentProcess)).journalId;
    const log = markerFile('unanswered', 'restarted.log');
    const r = await unanswered('unansrest', log, 'any', 'task', (victim) =>
      startAgent({ certsDir: world.pki.agent.dir, dataDir: victim.dataDir, args: ['--listen', victim.address] }),
    );
    const restarted = world.agents[0] as AgentProcess;
    expect({ outcome: r?.outcome, host: r?.host }).toEqual({ outcome: 'succeeded', host: restarted.address });
    expect(readFileSync(log, 'utf8')).toBe('start\n');
    expect((await agentInfo(world, restarted)).journalId).toBe(before);
  }, 240_000);

  it('ends unknown a task whose Exec was the first to that agent (its journal not known yet) and whose agent was replaced', async () => {
    const log = markerFile('unanswered', 'first.log');
    const r = await unanswered('unansfirst', log, 'any', 'connection', (victim) =>
      startAgent({ certsDir: world.pki.agent.dir, args: ['--listen', victim.address] }),
    );
    const fresh = world.agents[0] as AgentProcess;
    expect({ outcome: r?.outcome, host: r?.host, startedOn: r?.startedOn }).toEqual({ outcome: 'unknown', host: fresh.address, startedOn: [] });
    expect(r?.error).toMatch(/sent to .* before the agent there was known, which restarted or was replaced before it answered .*not run again/);
    expect(readFileSync(log, 'utf8')).toBe('');
    expect(await agentStartedTotal(world, fresh)).toBe(0);
  }, 240_000);
});
