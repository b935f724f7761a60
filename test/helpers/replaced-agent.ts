/**
 * What the scheduler tests of an agent replaced at its address share: a fleet agent behind a TCP
 * relay (the address a new agent can be switched in at), a task on it that runs on at its first
 * start only, followed live, and an agent link that says when an Exec starts on it.
 */
import type { AgentLink } from '../../scheduler/dispatch/agent-pool.js';
import { registerFleet } from '../../scheduler/queue/fleets.js';
import { waitForRun, type RunResults } from '../../scheduler/queue/wait.js';
import { startAgent, type AgentProcess } from './agent.js';
import type { SchedulerWorld } from './scheduler-world.js';
import { TcpRelay } from './tcp-relay.js';

/** An agent of the world's fleet and host, registered at a relay's address in front of it. */
export interface RelayedAgent {
  old: AgentProcess;
  relay: TcpRelay;
  fleet: string;
  host: string;
}

export async function relayedFleetAgent(world: SchedulerWorld): Promise<RelayedAgent> {
  const old = await startAgent({ certsDir: world.pki.agent.dir });
  const relay = await new TcpRelay(old).start();
  // A fleet task: the agent checks the signed target by its identity, not by the address it listens on.
  const { fleet, host } = world.pki.agent;
  await registerFleet(world.queue.redis, fleet, [{ host, address: relay.address }]);
  return { old, relay, fleet, host };
}

/**
 * Enqueues run `runId` of one task `t` on `a`'s host (pinned, or any host of the fleet): each
 * start appends a line to `log` and prints `running`; the first start runs on, a second exits at
 * once. Returns the run's results to come and its live output so far.
 */
export async function startOnceTask(
  world: SchedulerWorld,
  a: RelayedAgent,
  runId: string,
  target: 'pinned' | 'any',
  log: string,
): Promise<{ result: Promise<RunResults>; live: () => string }> {
  const enq = await world.queue.enqueueRun(
    {
      runId,
      tasks: [
        {
          taskId: 't',
          fleet: a.fleet,
          target: target === 'pinned' ? { host: a.host } : { any: true },
          argv: ['sh', '-c', `echo start >> ${log}; echo running; [ "$(wc -l < ${log})" -ge 2 ] || exec sleep 600`],
        },
      ],
    },
    world.signer,
  );
  let live = '';
  const result = waitForRun(world.queue.redis, runId, enq.taskIds, {
    timeoutMs: 120_000,
    onLive: (_t, chunk) => {
      live += chunk.data.toString();
    },
  });
  return { result, live: () => live };
}

/** `link`, calling `onExec` with each Exec's call options as it starts (before its request is written). */
export function watchingExec(link: AgentLink, onExec: (opts: Parameters<AgentLink['exec']>[1]) => void): AgentLink {
  return {
    exec: (req, opts) => {
      onExec(opts);
      return link.exec(req, opts);
    },
    info: () => link.info(),
    health: () => link.health(),
    cancel: (taskId) => link.cancel(taskId),
    cancelTask: (taskId) => (link.cancelTask ? link.cancelTask(taskId) : link.cancel(taskId).then((found) => ({ found, finished: false }))),
    warm: () => link.warm(),
    close: () => link.close(),
  };
}
