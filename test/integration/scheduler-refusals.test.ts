/**
 * An agent that refuses every task for a reason that lasts (its disk under its --disk-reserve),
 * beside a healthy one, with the worker in this process, real agents and a real redis-server:
 * tasks that may run elsewhere do, at once; those that cannot wait for it, say why (once), end
 * `error` with the agent's reason when the wait is over, and the worker logs the refusal once
 * per agent and reason a minute, not once per retry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import type { TaskInput } from '../../scheduler/queue/task.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { startAgent, type AgentProcess } from '../helpers/agent.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

describe('an agent that refuses work', () => {
  let world: SchedulerWorld;
  let refusing: AgentProcess;
  let healthy: AgentProcess;

  beforeAll(async () => {
    world = await startSchedulerWorld({ agents: 0, prefix: 'gxr-' });
    // More free space kept than the disk has: every task is refused, as long as the agent runs.
    refusing = await startAgent({ certsDir: world.pki.agent.dir, args: ['--disk-reserve', '1000000G'] });
    healthy = await startAgent({ certsDir: world.pki.agent.dir });
  }, 120_000);
  afterAll(async () => {
    await world?.close();
  });

  it('is gone round by tasks that may run elsewhere; the others wait, say why, end with its reason; logged once', async () => {
    const both = [refusing.address, healthy.address];
    const tasks: TaskInput[] = [
      ...Array.from({ length: 8 }, (_, i) => ({ taskId: `any${i}`, agents: both, target: { any: true as const }, argv: ['echo', `any${i}`] })),
      ...Array.from({ length: 2 }, (_, i) => ({ taskId: `pin${i}`, agents: both, target: { host: refusing.address }, argv: ['true'] })),
      ...Array.from({ length: 3 }, (_, i) => ({ taskId: `only${i}`, agents: [refusing.address], target: { any: true as const }, argv: ['true'] })),
    ];
    const enq = await world.queue.enqueueRun({ runId: 'refused1', tasks }, world.signer);
    const warns: Array<Record<string, unknown> & { msg?: string }> = [];
    const log = { info: () => undefined, warn: (o: object, msg?: string) => void warns.push({ ...o, msg }), error: () => undefined };
    const started = Date.now();
    // The refused tasks' wait is cut to seconds (10 minutes by default).
    const w = SchedulerWorker.start({ settings: world.settings, connect: world.connect(), policy: { busyWaitMs: 4000 }, log });
    const notes: string[] = [];
    try {
      const res = await waitForRun(world.queue.redis, 'refused1', enq.taskIds, { timeoutMs: 120_000, onNote: (t, text) => notes.push(`${t}: ${text}`) });
      const outcome = (id: string) => res.results.get(id);
      // Every task that may run on the healthy agent ran there.
      for (let i = 0; i < 8; i++) expect(outcome(`any${i}`)).toMatchObject({ outcome: 'succeeded', host: healthy.address });
      // The others end with the agent's reason, never having run.
      for (const id of ['pin0', 'pin1', 'only0', 'only1', 'only2']) {
        expect(outcome(id)).toMatchObject({ outcome: 'error', reason: 'RESOURCE_EXHAUSTED', attempts: 0, host: refusing.address });
        expect(outcome(id)?.error).toMatch(/^RESOURCE_EXHAUSTED: agent .*: the agent's disk is nearly full: .*\(--disk-reserve\)/);
      }
      // Each pinned task said why it waits; the any-host tasks every agent refuses said it once for all.
      const pinNotes = notes.filter((n) => n.includes(`${refusing.address} refuses new tasks; waiting up to 4s for it to take them again`));
      expect(pinNotes.map((n) => n.split(':')[0]).sort(), notes.join('\n')).toEqual(['pin0', 'pin1']);
      const onlyNotes = notes.filter((n) => n.includes('no agent it may use takes it now; waiting up to 4s for one to'));
      expect(onlyNotes, notes.join('\n')).toHaveLength(1);
      expect(onlyNotes[0]).toMatch(/\(--disk-reserve\)/);
      expect(notes).toHaveLength(3);
      // Logged: once for this agent and reason, a repeat counted, not logged, within the minute.
      const refusals = warns.filter((o) => o.agent === refusing.address);
      expect(refusals.length, JSON.stringify(warns)).toBeGreaterThanOrEqual(1);
      expect(refusals.length).toBeLessThanOrEqual(1 + Math.floor((Date.now() - started) / 60_000));
      expect(refusals[0]).toMatchObject({ refusal: 'disk-reserve', msg: expect.stringMatching(/^agent refuses new tasks/) });
      expect(String(refusals[0]?.err)).toMatch(/--disk-reserve/);
    } finally {
      await w.drain(5000);
    }
  }, 180_000);
});
