/**
 * The scheduler under faults, with real processes: an agent stopped (SIGSTOP) longer than the
 * Exec streams' keepalive while 300 any-host tasks run (no task runs twice, none is lost); an
 * agent killed (-9) and restarted during a task (no second run, an honest `unknown` result
 * naming where it started, its process swept); one killed for good (`unknown`, the output that
 * came kept); Redis answering MISCONF at enqueue (a clean
 * REDIS_UNAVAILABLE, nothing left queued).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadCertDir } from '../../certs/index.js';
import { LOST_IN_RESTART } from '../../proto/index.js';
import { agentConnector } from '../../scheduler/dispatch/connector.js';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { runAndWait } from '../../scheduler/queue/run.js';
import { listRuns } from '../../scheduler/queue/runs.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { TaskQueue } from '../../scheduler/queue/queue.js';
import { createRedis, redisSettingsFromUrl } from '../../scheduler/redis/redis.js';
import { markerFile, startAgent, type AgentProcess, FAST_KEEPALIVE, FAST_PING_GUARDS } from '../helpers/agent.js';
import { deadOrZombie } from '../helpers/procs.js';
import { startRedis } from '../helpers/redis.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

describe('scheduler under faults', () => {
  let world: SchedulerWorld;

  beforeAll(async () => {
    world = await startSchedulerWorld({ agents: 0, prefix: 'gxf-' });
  });
  afterAll(async () => {
    await world?.close();
  });

  const connect = () => agentConnector(loadCertDir(world.pki.clients.scheduler.dir), { keepalive: FAST_KEEPALIVE });

  const lines = (f: string): string[] => readFileSync(f, 'utf8').split('\n').filter(Boolean);

  it('an agent stopped longer than the keepalive during 300 any-host tasks: none doubled, none lost', async () => {
    const agents = await Promise.all([0, 1].map(() => startAgent({ certsDir: world.pki.agent.dir, args: [...FAST_PING_GUARDS, '--capacity', '8'] })));
    const f = markerFile('sched-faults', 'stall');
    const tasks = Array.from({ length: 300 }, (_, i) => ({
      taskId: `t${i}`,
      agents: agents.map((a) => a.address),
      target: { any: true as const },
      argv: ['sh', '-c', `sleep 0.2; echo t${i} >> ${f}`],
    }));
    const enq = await world.queue.enqueueRun({ runId: 'stall1', tasks }, world.signer);
    const w = SchedulerWorker.start({ settings: world.settings, connect: connect(), concurrency: 32, policy: { agentGoneMs: 120_000 } });
    try {
      // Stall one agent once both are busy, for well over the keepalive (about 2 s).
      await vi.waitFor(() => expect(lines(f).length).toBeGreaterThan(20), { timeout: 60_000, interval: 50 });
      const stalled = agents[0] as AgentProcess;
      stalled.kill('SIGSTOP');
      const before = lines(f).length;
      // The other agent goes on: the stall's broken streams were seen, and work continued.
      await vi.waitFor(() => expect(lines(f).length).toBeGreaterThan(before + 40), { timeout: 60_000, interval: 100 });
      stalled.kill('SIGCONT');
      const res = await waitForRun(world.queue.redis, 'stall1', enq.taskIds, { timeoutMs: 240_000 });
      const ids = lines(f);
      expect(ids.length).toBe(300);
      expect(new Set(ids).size).toBe(300);
      expect([...res.results.values()].filter((r) => r.outcome !== 'succeeded')).toEqual([]);
      // Honest about it: no result claims more than one start.
      expect([...res.results.values()].filter((r) => r.mayHaveRepeated || r.startedOn.length > 1)).toEqual([]);
    } finally {
      await w.drain(5000);
      for (const a of agents) a.kill('SIGCONT');
      await Promise.all(agents.map((a) => a.stop()));
    }
  });

  it('an agent killed (-9) and restarted during a task: no second run, the result says started there and lost', async () => {
    const first = await startAgent({ certsDir: world.pki.agent.dir });
    const f = markerFile('sched-faults', 'restart');
    const address = first.address;
    const run = {
      runId: 'restart1',
      tasks: [{ taskId: 't', agents: [address], target: { host: address }, argv: ['sh', '-c', `echo ran >> ${f}; exec sleep 60`] }],
    };
    const enq = await world.queue.enqueueRun(run, world.signer);
    const w = SchedulerWorker.start({
      settings: world.settings,
      connect: connect(),
      concurrency: 2,
      breaker: { failureThreshold: 2, openMs: 200, maxOpenMs: 1000 },
    });
    let second: AgentProcess | undefined;
    try {
      await vi.waitFor(() => expect(lines(f)).toEqual(['ran']), { timeout: 30_000, interval: 50 });
      const sleeper = Number(readFileSync(`/proc/${first.pid}/task/${first.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
      expect(sleeper).toBeGreaterThan(0);
      first.kill('SIGKILL');
      await first.exited;
      // Same data dir and state dir, same port: the agent comes back from its journal.
      second = await startAgent({ certsDir: world.pki.agent.dir, dataDir: first.dataDir, args: ['--listen', address] });
      const res = await waitForRun(world.queue.redis, 'restart1', enq.taskIds, { timeoutMs: 120_000 });
      expect(res.results.get('t')).toMatchObject({ outcome: 'unknown', reason: LOST_IN_RESTART, startedOn: [address], mayHaveRepeated: false });
      expect(lines(f)).toEqual(['ran']);
      // The task's process did not outlive its agent's restart (gone, or a zombie its new parent
      // has yet to reap).
      await vi.waitFor(() => expect(deadOrZombie(sleeper)).toBe(true), { timeout: 30_000, interval: 50 });
    } finally {
      await w.drain(5000);
      await second?.stop();
    }
  });

  it('an agent killed (-9) for good during a task: a note at once, then unknown, its host named, the output that came kept and shown once', async () => {
    const gone = await startAgent({ certsDir: world.pki.agent.dir });
    const address = gone.address;
    const run = { runId: 'gone1', tasks: [{ taskId: 't', agents: [address], target: { host: address }, argv: ['sh', '-c', 'echo start; exec sleep 60'] }] };
    const enq = await world.queue.enqueueRun(run, world.signer);
    // Waited for this long once the agent is gone (the policy's default is minutes).
    const w = SchedulerWorker.start({ settings: world.settings, connect: connect(), policy: { agentGoneMs: 1500 } });
    let live = '';
    const notes: string[] = [];
    let shown: boolean | undefined;
    try {
      const reading = waitForRun(world.queue.redis, 'gone1', enq.taskIds, {
        timeoutMs: 120_000,
        onLive: (_t, c) => (live += c.data.toString()),
        onNote: (t, text) => notes.push(`${t}: ${text}`),
        onResult: (_r, _o, s) => (shown = s),
      });
      await vi.waitFor(() => expect(live).toBe('start\n'), { timeout: 30_000, interval: 20 });
      gone.kill('SIGKILL');
      await gone.exited;
      const res = await reading;
      expect(res.results.get('t')).toMatchObject({ outcome: 'unknown', reason: 'UNAVAILABLE', host: address, startedOn: [address] });
      // What was seen of it: the bytes that came, and the time it was seen running (from its
      // Started, before "start" came, to its stream's end, after the kill), not 0.
      expect(res.results.get('t')).toMatchObject({ stdoutBytes: 6, stderrBytes: 0 });
      expect(res.results.get('t')?.durationMs).toBeGreaterThan(0);
      expect(res.results.get('t')?.error).toMatch(/outcome lost/);
      expect(Buffer.concat((res.output.get('t') ?? []).map((c) => c.data)).toString()).toBe('start\n');
      // Shown live already, whole: not printed again.
      expect(shown).toBe(true);
      // Whoever follows the run was told at once why it waits, not only when the wait ended.
      expect(notes).toHaveLength(1);
      expect(notes[0]).toMatch(
        new RegExp(`^t: task t: ${address} went away while the task ran there \\(.+\\); waiting up to 1500ms for it to come back, else its outcome is lost$`),
      );
    } finally {
      await w.drain(5000);
    }
  });

  it('waiting for a restarting agent (breaker open) is not an attempt: the task runs when it is back', async () => {
    const agent = await startAgent({ certsDir: world.pki.agent.dir });
    const address = agent.address;
    let opened = 0;
    const log = { info: (o: object) => void ((o as { breaker?: string }).breaker === 'open' && (opened += 1)), warn: () => undefined, error: () => undefined };
    const w = SchedulerWorker.start({
      settings: world.settings,
      connect: connect(),
      concurrency: 2,
      breaker: { failureThreshold: 2, openMs: 200, maxOpenMs: 400 },
      policy: { backoffMaxMs: 100 },
      log,
    });
    let back: AgentProcess | undefined;
    try {
      // Reached once, so the pool knows it as a live agent that may come back.
      const warm = await world.queue.enqueueRun(
        { runId: 'warm1', tasks: [{ taskId: 't', agents: [address], target: { host: address }, argv: ['true'] }] },
        world.signer,
      );
      await waitForRun(world.queue.redis, 'warm1', warm.taskIds, { timeoutMs: 60_000 });
      agent.kill('SIGKILL');
      await agent.exited;
      const enq = await world.queue.enqueueRun(
        { runId: 'back1', tasks: [{ taskId: 't', agents: [address], target: { host: address }, argv: ['true'], retry: { attempts: 3, backoffMs: 10 } }] },
        world.signer,
      );
      // Its breaker opens again after each failed probe: far more waits than the task's 3 attempts.
      await vi.waitFor(() => expect(opened).toBeGreaterThanOrEqual(6), { timeout: 60_000, interval: 20 });
      back = await startAgent({ certsDir: world.pki.agent.dir, dataDir: agent.dataDir, args: ['--listen', address] });
      const res = await waitForRun(world.queue.redis, 'back1', enq.taskIds, { timeoutMs: 120_000 });
      expect(res.results.get('t')).toMatchObject({ outcome: 'succeeded', host: address });
      expect(res.results.get('t')?.attempts).toBeLessThanOrEqual(3);
    } finally {
      await w.drain(5000);
      await back?.stop();
    }
  });

  it('Redis answering MISCONF at enqueue: REDIS_UNAVAILABLE with its reason, nothing left queued', async () => {
    const redis = await startRedis({ config: ['enable-protected-configs yes', 'save 3600 1'] });
    const admin = createRedis(redisSettingsFromUrl(redis.url), 'worker');
    try {
      // A snapshot that cannot be written makes Redis refuse writes (stop-writes-on-bgsave-error).
      await admin.config('SET', 'dir', '/proc');
      await admin.bgsave();
      await vi.waitFor(async () => expect(await admin.info('persistence')).toContain('rdb_last_bgsave_status:err'), { timeout: 20_000, interval: 50 });
      const settings = redisSettingsFromUrl(redis.url);
      const run = { runId: 'misconf1', tasks: [{ taskId: 't', agents: ['127.0.0.1:1'], target: { any: true as const }, argv: ['true'] }] };
      const err = await runAndWait(run, { settings, signer: world.signer, connect: connect(), worker: 'always' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'REDIS_UNAVAILABLE' });
      expect((err as Error).message).toContain('MISCONF');
      // Disk back: nothing of the run is queued or registered.
      await admin.config('SET', 'dir', redis.dir);
      await admin.bgsave();
      await vi.waitFor(async () => expect(await admin.info('persistence')).toContain('rdb_last_bgsave_status:ok'), { timeout: 20_000, interval: 50 });
      const q = await TaskQueue.open(settings);
      try {
        expect(await listRuns(q.redis)).toEqual([]);
        expect(await q.queueFor('misconf1').getJobCounts('waiting', 'active', 'delayed')).toMatchObject({ waiting: 0, active: 0, delayed: 0 });
      } finally {
        await q.close();
      }
    } finally {
      admin.disconnect();
      await redis.destroy();
    }
  });
});
