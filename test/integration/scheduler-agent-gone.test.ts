/**
 * An any-host task whose request went out to an agent that then went away (SIGSTOP: no Started,
 * the stream broken by keepalive), with real agents: it is never reported `unreachable` ("never
 * ran"). When the other agent is gone too, it ends `unknown` naming the agent it may have started
 * on, after the one wait its note announced; when the other agent answers, it runs there and says
 * it may also have started on the first; a cancel during the wait ends it `unknown` (its agent
 * could not be asked), not "cancelled before the task ran"; a worker that takes the moved task
 * over (the first one lost its lock on the job) says so too.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadCertDir } from '../../certs/index.js';
import { agentConnector } from '../../scheduler/dispatch/connector.js';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { requestCancel } from '../../scheduler/queue/cancel.js';
import { runQueueName } from '../../scheduler/queue/runs.js';
import { waitForRun, type RunResults } from '../../scheduler/queue/wait.js';
import { KEY_PREFIX } from '../../scheduler/redis/redis.js';
import { markerFile, startAgent, type AgentProcess, FAST_KEEPALIVE, FAST_PING_GUARDS } from '../helpers/agent.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

describe('a task whose agent went away after its request went out', () => {
  let world: SchedulerWorld;

  beforeAll(async () => {
    world = await startSchedulerWorld({ agents: 0, prefix: 'gxg-' });
  });
  afterAll(async () => {
    await world?.close();
  });

  const connect = () => agentConnector(loadCertDir(world.pki.clients.scheduler.dir), { keepalive: FAST_KEEPALIVE });

  /**
   * Two agents a worker (agentGoneMs `goneMs`) has reached, both stopped; then one any-host task
   * (`runId`) is enqueued: its request goes out to one of them on a live connection and its
   * stream breaks. Resolves once the note names that agent (`went`), the other being `other`.
   * `argv`: the task's (default `echo ok`); `lockDurationMs`: the worker's job locks.
   */
  async function stalledTask(runId: string, goneMs: number, o: { argv?: string[]; lockDurationMs?: number } = {}) {
    const agents = await Promise.all([0, 1].map(() => startAgent({ certsDir: world.pki.agent.dir, args: FAST_PING_GUARDS })));
    const addrs = agents.map((a) => a.address);
    const w = SchedulerWorker.start({
      settings: world.settings,
      connect: connect(),
      policy: { agentGoneMs: goneMs, backoffMaxMs: 200 },
      ...(o.lockDurationMs ? { lockDurationMs: o.lockDurationMs } : {}),
    });
    // Reached once each, over connections that stay open.
    const warm = await world.queue.enqueueRun(
      { runId: `${runId}w`, tasks: addrs.map((a, i) => ({ taskId: `w${i}`, agents: addrs, target: { host: a }, argv: ['true'] })) },
      world.signer,
    );
    await waitForRun(world.queue.redis, `${runId}w`, warm.taskIds, { timeoutMs: 60_000 });
    for (const a of agents) a.kill('SIGSTOP');
    const enq = await world.queue.enqueueRun(
      { runId, tasks: [{ taskId: 't', agents: addrs, target: { any: true }, argv: o.argv ?? ['sh', '-c', 'echo ok'] }] },
      world.signer,
    );
    const notes: string[] = [];
    const result: Promise<RunResults> = waitForRun(world.queue.redis, runId, enq.taskIds, { timeoutMs: 120_000, onNote: (_t, text) => notes.push(text) });
    await vi.waitFor(() => expect(notes).toHaveLength(1), { timeout: 60_000, interval: 20 });
    const note = notes[0] as string;
    const i = addrs.findIndex((a) => note.includes(`${a} went away`));
    expect(i).toBeGreaterThanOrEqual(0);
    const went = agents[i] as AgentProcess;
    const other = agents[1 - i] as AgentProcess;
    const close = async (): Promise<void> => {
      await w.drain(5000);
      for (const a of agents) a.kill('SIGCONT');
      await Promise.all(agents.map((a) => a.stop()));
    };
    return { went, other, note, notes, result, close };
  }

  it('every agent gone: unknown, naming the agent it may have started on; never unreachable, never "repeated"', async () => {
    const s = await stalledTask('gone2', 1500);
    try {
      s.other.kill('SIGKILL');
      await s.other.exited;
      const r = (await s.result).results.get('t');
      expect(r).toMatchObject({ outcome: 'unknown', reason: 'UNAVAILABLE', host: s.went.address, startedOn: [], mayHaveRepeated: false });
      expect(r?.error).toContain(`may have started on ${s.went.address}, outcome lost`);
      // The note said what would happen.
      expect(s.note).toMatch(/may have started there .*waiting up to 1500ms for it to come back, else it runs on another agent .*or its outcome is lost/);
      // One wait, the one announced: no second note, no second wait for the other agent.
      expect(s.notes).toHaveLength(1);
    } finally {
      await s.close();
    }
  });

  it('the other agent answers: the task runs there once its agent stayed away, and says where else it may have started', async () => {
    const s = await stalledTask('moved2', 1500);
    try {
      s.other.kill('SIGCONT');
      const r = (await s.result).results.get('t');
      expect(r).toMatchObject({ outcome: 'succeeded', host: s.other.address, startedOn: [s.other.address], mayHaveRepeated: true });
      expect(r?.error).toContain(`may also have started on ${s.went.address}`);
    } finally {
      await s.close();
    }
  });

  it('moved, then taken over (its worker lost the lock on the job): the result still says where else it may have started', async () => {
    const ran = markerFile('sched-agent-gone', 'moved3.log');
    const release = join(dirname(ran), 'moved3.release');
    const argv = ['sh', '-c', 'echo "$0" >> "$1"; while [ ! -e "$2" ]; do sleep 0.05; done; echo ok', 'moved3', ran, release];
    const s = await stalledTask('moved3', 1500, { argv, lockDurationMs: 4000 });
    try {
      s.other.kill('SIGCONT');
      // It runs on the other agent now; then the worker's lock on its job is lost (as when the
      // worker stalls past it), and the job is taken again and attaches to that execution.
      await vi.waitFor(() => expect(readFileSync(ran, 'utf8')).toBe('moved3\n'), { timeout: 60_000, interval: 20 });
      const job = `${KEY_PREFIX}:${runQueueName('moved3')}:moved3-t`;
      const taken = Number(await world.queue.redis.hget(job, 'ats'));
      await world.queue.redis.del(`${job}:lock`);
      await vi.waitFor(async () => expect(Number(await world.queue.redis.hget(job, 'ats'))).toBeGreaterThan(taken), {
        timeout: 60_000,
        interval: 50,
      });
      writeFileSync(release, '');
      const r = (await s.result).results.get('t');
      expect(r).toMatchObject({ outcome: 'succeeded', host: s.other.address, startedOn: [s.other.address], mayHaveRepeated: true });
      expect(r?.attached || r?.replayed).toBe(true);
      expect(r?.error).toContain(`may also have started on ${s.went.address}`);
      expect(readFileSync(ran, 'utf8')).toBe('moved3\n');
    } finally {
      writeFileSync(release, '');
      await s.close();
    }
  });

  it('cancelled while it waits for its agent: unknown (that agent could not be asked), not "cancelled before the task ran"', async () => {
    const s = await stalledTask('cancel2', 60_000);
    try {
      for (const a of [s.went, s.other]) {
        a.kill('SIGKILL');
        await a.exited;
      }
      await requestCancel(world.queue.redis, 'cancel2');
      const r = (await s.result).results.get('t');
      expect(r).toMatchObject({ outcome: 'unknown', reason: 'UNAVAILABLE', host: s.went.address });
      expect(r?.error).toMatch(/could not be asked whether the task ran there/);
    } finally {
      await s.close();
    }
  });
});
