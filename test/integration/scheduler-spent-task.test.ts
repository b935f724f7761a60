/**
 * A queued task whose exec id its agent already ran and has forgotten (past `--task-retention`:
 * the id of signed work stays spent, ALREADY_EXISTS): the task ran there and its outcome is lost,
 * so it ends `unknown` naming that agent, never `error`, and is never run again.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { markerDir, startAgent, type AgentProcess } from '../helpers/agent.js';
import { execCollect, exitOf, rawAgentClient } from '../helpers/grpc.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';
import { Markers, signedExec } from '../helpers/signed.js';

describe('a queued task its agent ran and no longer holds', () => {
  let world: SchedulerWorld;
  let short: AgentProcess;

  beforeAll(async () => {
    world = await startSchedulerWorld({ agents: 0, prefix: 'gxspent-' });
    // Long enough that the replay right after the end comes within it on a loaded machine.
    short = await startAgent({ certsDir: world.pki.agent.dir, args: ['--task-retention', '4s'] });
  });

  afterAll(async () => {
    await short?.stop();
    await world?.close();
  });

  it('ends unknown (it ran there, its outcome is lost), not error, and does not run again', async () => {
    const markers = new Markers(markerDir('spent'));
    const argv = markers.argv('t');
    const runId = 'spentrun';
    const target = { fleet: '', host: short.address, agents: [short.address] };
    // The task's exec id ran on the agent (an earlier dispatch whose result never reached the
    // run), and the agent forgot it: it refuses that id now.
    const s = rawAgentClient(short.address, world.pki.clients.scheduler.dir);
    try {
      const req = signedExec(world.signer, { runId, taskId: 't', argv, target });
      expect(exitOf(await execCollect(s.agent, req))).toMatchObject({ code: 0 });
      await vi.waitFor(
        async () => {
          const r = await execCollect(s.agent, req);
          expect(r.error?.gaxxCode).toBe('ALREADY_EXISTS');
        },
        { timeout: 60_000, interval: 200 },
      );
    } finally {
      s.close();
    }
    const w = SchedulerWorker.start({ settings: world.settings, connect: world.connect(), concurrency: 2 });
    try {
      const enq = await world.queue.enqueueRun(
        { runId, tasks: [{ taskId: 't', agents: [short.address], target: { host: short.address }, argv }] },
        world.signer,
      );
      const res = await waitForRun(world.queue.redis, runId, enq.taskIds, { timeoutMs: 60_000 });
      const r = res.results.get('t');
      expect({ outcome: r?.outcome, reason: r?.reason, host: r?.host, startedOn: r?.startedOn }).toEqual({
        outcome: 'unknown',
        reason: 'ALREADY_EXISTS',
        host: short.address,
        startedOn: [short.address],
      });
      expect(r?.error).toMatch(/^started on .*, outcome lost \(.* ran it and no longer holds its result/);
      expect(readFileSync(markers.path('t'), 'utf8')).toBe('ran\n');
    } finally {
      await w.drain(5000);
    }
  }, 120_000);
});
