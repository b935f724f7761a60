/**
 * The scheduler end to end: real redis-server, four real agents over mTLS, the worker in this
 * process or as its own process (to kill -9 it). Nothing lost, nothing run twice.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TaskSigner } from '../../proto/index.js';
import { HEARTBEAT_KEY, schedulerAlive } from '../../scheduler/daemon/daemon.js';
import { registerFleet } from '../../scheduler/queue/fleets.js';
import { TaskQueue } from '../../scheduler/queue/queue.js';
import type { RedisSettings } from '../../scheduler/redis/redis.js';
import { runDoneKey, runEventsKey } from '../../scheduler/queue/results.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { runAndWait } from '../../scheduler/queue/run.js';
import type { TaskInput } from '../../scheduler/queue/task.js';
import type { AgentConnector } from '../../scheduler/dispatch/agent-pool.js';
import { warmingConnector } from '../../scheduler/dispatch/connector.js';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { markerFile, startAgent, type AgentProcess } from '../helpers/agent.js';
import { eventually } from '../helpers/poll.js';
import type { Pki } from '../helpers/pki.js';
import type { TestRedis } from '../helpers/redis.js';
import { startSchedulerProcess, stopAllSchedulers } from '../helpers/scheduler.js';
import { agentStartedTotal, startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

const FAST_BREAKER = { failureThreshold: 2, openMs: 300, maxOpenMs: 1500 };

describe('scheduler with real agents', () => {
  let world: SchedulerWorld;
  let dir: string;
  let pki: Pki;
  let redis: TestRedis;
  let settings: RedisSettings;
  let agents: AgentProcess[];
  let q: TaskQueue;
  let signer: TaskSigner;
  const connect = (): ReturnType<SchedulerWorld['connect']> => world.connect();

  beforeAll(async () => {
    world = await startSchedulerWorld({ agents: 4, prefix: 'gxs-' });
    ({ dir, pki, redis, settings, agents, queue: q, signer } = world);
  });

  afterAll(async () => {
    await world?.close();
  });

  // Each test starts its own scheduler processes: one that fails must not leave them running to
  // take the next test's jobs (a daemon serves every run).
  afterEach(async () => {
    await stopAllSchedulers();
  });

  /** Sum of the agents' own execution counters. */
  async function startedTotal(list = agents): Promise<number> {
    let n = 0;
    for (const a of list) n += await agentStartedTotal(world, a);
    return n;
  }

  const anyHost = (runId: string, n: number, argv: (id: string) => string[]): { runId: string; tasks: TaskInput[] } => ({
    runId,
    tasks: Array.from({ length: n }, (_, i) => ({
      taskId: `t${i}`,
      agents: agents.map((a) => a.address),
      target: { any: true },
      argv: argv(`${runId}-t${i}`),
    })),
  });

  async function resultCount(runId: string): Promise<number> {
    return (q.redis as Redis).hlen(runDoneKey(runId));
  }

  it('runs 1,000 tasks over 4 agents: one result each, 1,000 executions counted by the agents', async () => {
    const before = await startedTotal();
    const w = SchedulerWorker.start({ settings, connect: connect(), concurrency: 64 });
    try {
      const enq = await q.enqueueRun(
        anyHost('k1000', 1000, () => ['true']),
        signer,
      );
      const res = await waitForRun(q.redis, 'k1000', enq.taskIds, { timeoutMs: 120_000 });
      expect(res.results.size).toBe(1000);
      expect([...res.results.values()].filter((r) => r.outcome !== 'succeeded')).toEqual([]);
      const entries = await (q.redis as Redis).xrange(runEventsKey('k1000'), '-', '+');
      expect(entries.filter(([, f]) => f[1] === 'res')).toHaveLength(1000);
      expect(await startedTotal()).toBe(before + 1000);
      const hosts = new Set([...res.results.values()].map((r) => r.host));
      expect(hosts.size).toBe(4);
    } finally {
      await w.drain(5000);
    }
  }, 300_000);

  it('survives kill -9 of the scheduler halfway through 500 tasks: all complete, none ran twice', async () => {
    const ranFile = markerFile('scheduler', 'ran.log');
    const before = await startedTotal();
    const common = { redisUrl: redis.url, stateDir: join(dir, 'sched-state'), certsDir: pki.clients.scheduler.dir, concurrency: 32, lockMs: 2000 };
    const first = await startSchedulerProcess(common);
    // The first 200 tasks end at once; the other 300 run until the test releases them (an event,
    // not a time), so the kill finds exactly 200 results and some tasks in flight, however
    // loaded the machine.
    const release = join(dirname(ranFile), 'k9.release');
    const enq = await q.enqueueRun(
      anyHost('k9', 500, (id) => [
        'sh',
        '-c',
        'echo "$0" >> "$1"; case "$0" in *-t1[0-9][0-9]|*-t[0-9][0-9]|*-t[0-9]) exit 0;; esac; while [ ! -e "$2" ]; do sleep 0.05; done',
        id,
        ranFile,
        release,
      ]),
      signer,
    );
    const started = (): number => readFileSync(ranFile, 'utf8').trim().split('\n').filter(Boolean).length;
    await eventually(async () => (await resultCount('k9')) >= 200 && started() > 200, 60_000, 25);
    first.kill('SIGKILL');
    await first.exited;
    expect(await resultCount('k9')).toBe(200);
    expect(started()).toBeGreaterThan(200);
    writeFileSync(release, '');

    const second = await startSchedulerProcess(common);
    const res = await waitForRun(q.redis, 'k9', enq.taskIds, { timeoutMs: 120_000 });
    expect(res.results.size).toBe(500);
    expect([...res.results.values()].filter((r) => r.outcome !== 'succeeded')).toEqual([]);
    const lines = readFileSync(ranFile, 'utf8').trim().split('\n');
    expect(new Set(lines).size).toBe(500);
    expect(lines).toHaveLength(500);
    expect(await startedTotal()).toBe(before + 500);
    // The tasks in flight at the kill were re-dispatched to the same agents, which attached or replayed.
    expect([...res.results.values()].some((r) => r.attached || r.replayed)).toBe(true);

    // The daemon serves metrics, publishes a heartbeat, and drains on SIGTERM (exit 0).
    const metrics = await fetch(`http://${second.started.metrics as string}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/gaxx_scheduler_tasks_total\{outcome="succeeded"\} \d+/);
    expect(metrics).toMatch(/gaxx_scheduler_queue_depth\{state="waiting"\} 0/);
    expect(await schedulerAlive(q.redis)).toBe(true);
    second.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(await q.redis.zscore(HEARTBEAT_KEY, second.started.id as string)).toBeNull();
    // The killed one's heartbeat ages out by itself.
    await noDaemon(10_000);
  }, 300_000);

  it('drains on SIGTERM by handing in-flight tasks back; two schedulers then share the work; the live output is each byte once', async () => {
    const ranFile = markerFile('scheduler', 'drain.log');
    const common = { redisUrl: redis.url, stateDir: join(dir, 'sched-state'), certsDir: pki.clients.scheduler.dir, lockMs: 2000 };
    const first = await startSchedulerProcess({ ...common, concurrency: 8, drainMs: 200 });
    // The tasks run until the test releases them (an event, not a time: a loaded machine may be slow).
    const release = join(dirname(ranFile), 'drain.release');
    const script = 'echo "$0" >> "$1"; echo "start $0"; while [ ! -e "$2" ]; do sleep 0.05; done; echo "end $0"';
    const slow = await q.enqueueRun(
      anyHost('kdrain', 8, (id) => ['sh', '-c', script, id, ranFile, release]),
      signer,
    );
    // A reader of the run from its start, as `gaxx run` is: what it shows live, and whether it
    // would print a task's output again at its result.
    const live = new Map<string, string>();
    const shownLive = new Map<string, boolean>();
    const reading = waitForRun(q.redis, 'kdrain', slow.taskIds, {
      timeoutMs: 120_000,
      onLive: (task, c) => live.set(task, (live.get(task) ?? '') + c.data.toString()),
      onResult: (r, _o, shown) => shownLive.set(r.taskId, shown),
    });
    // Each task's first line shown live by the first scheduler before it is stopped.
    await eventually(() => [...live.values()].filter((t) => t.startsWith('start ')).length === 8, 60_000, 25);
    first.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(await resultCount('kdrain')).toBe(0);
    writeFileSync(release, '');

    const [b, c] = await Promise.all([startSchedulerProcess({ ...common, concurrency: 4 }), startSchedulerProcess({ ...common, concurrency: 4 })]);
    const quick = await q.enqueueRun(
      anyHost('kshare', 60, () => ['sleep', '0.05']),
      signer,
    );
    const res = await reading;
    await waitForRun(q.redis, 'kshare', quick.taskIds, { timeoutMs: 60_000 });
    expect([...res.results.values()].every((r) => r.outcome === 'succeeded' && (r.attached || r.replayed))).toBe(true);
    // The scheduler that took a task over went on with its live output where the first one
    // stopped: each line once, and nothing left to print again at the result.
    for (const taskId of slow.taskIds) {
      const id = `kdrain-${taskId}`;
      expect({ taskId, live: live.get(taskId), shown: shownLive.get(taskId) }).toEqual({ taskId, live: `start ${id}\nend ${id}\n`, shown: true });
      expect(Buffer.concat((res.output.get(taskId) ?? []).map((c) => c.data)).toString()).toBe(`start ${id}\nend ${id}\n`);
    }
    expect(readFileSync(ranFile, 'utf8').trim().split('\n')).toHaveLength(8);
    for (const p of [b, c]) {
      const m = await fetch(`http://${p.started.metrics as string}/metrics`).then((r) => r.text());
      expect(Number(/gaxx_scheduler_tasks_total\{outcome="succeeded"\} (\d+)/.exec(m)?.[1] ?? 0)).toBeGreaterThan(0);
      p.kill('SIGTERM');
      expect(await p.exited).toBe(0);
    }
  }, 300_000);

  it('an agent killed mid-run: tasks it had started wait for it (lost in its restart), the rest move; its breaker opens, then closes', async () => {
    const w = SchedulerWorker.start({ settings, connect: connect(), concurrency: 32, breaker: FAST_BREAKER, policy: { backoffMaxMs: 500 } });
    const victim = agents[3] as AgentProcess;
    try {
      const enq = await q.enqueueRun(
        anyHost('kagent', 300, () => ['sleep', '0.05']),
        signer,
      );
      await eventually(async () => (await resultCount('kagent')) >= 60, 12_000, 20);
      victim.kill('SIGKILL');
      await victim.exited;
      await eventually(() => w.pool.states().get(victim.address) !== 'closed', 10_000, 50);
      expect(w.pool.states().get(victim.address)).not.toBe('closed');
      // It comes back with its journal (same data dir, same address).
      const back = await startAgent({ certsDir: pki.agent.dir, dataDir: victim.dataDir, args: ['--listen', victim.address] });
      agents[3] = back;
      const res = await waitForRun(q.redis, 'kagent', enq.taskIds, { timeoutMs: 120_000 });
      const results = [...res.results.values()];
      // Never moved after it may have started: what ran on the victim when it died is lost, honestly.
      expect(results.filter((r) => r.outcome !== 'succeeded' && !(r.outcome === 'unknown' && r.host === victim.address))).toEqual([]);
      expect(results.filter((r) => r.startedOn.length > 1 || r.mayHaveRepeated)).toEqual([]);
      await eventually(() => w.pool.states().get(back.address) === 'closed', 10_000, 50);
      expect(w.pool.states().get(back.address)).toBe('closed');
      const again = await q.enqueueRun(
        anyHost('kback', 80, () => ['sleep', '0.02']),
        signer,
      );
      const res2 = await waitForRun(q.redis, 'kback', again.taskIds, { timeoutMs: 60_000 });
      expect([...res2.results.values()].some((r) => r.host === back.address)).toBe(true);
    } finally {
      await w.drain(5000);
    }
  }, 180_000);

  it('finishes every task when redis-server restarts mid-run, each run once', async () => {
    const before = await startedTotal();
    const w = SchedulerWorker.start({ settings, connect: connect(), concurrency: 32, lockDurationMs: 2000 });
    try {
      const enq = await q.enqueueRun(
        anyHost('kredis', 200, () => ['sleep', '0.02']),
        signer,
      );
      await eventually(async () => (await resultCount('kredis')) >= 50, 12_000, 20);
      await redis.restart();
      // The producer connection fails fast by design; a caller reconnects after an outage.
      await q.close();
      q = await TaskQueue.open(settings);
      world.queue = q;
      const res = await waitForRun(q.redis, 'kredis', enq.taskIds, { timeoutMs: 120_000 });
      expect([...res.results.values()].filter((r) => r.outcome !== 'succeeded')).toEqual([]);
      expect(await startedTotal()).toBe(before + 200);
    } finally {
      await w.drain(5000);
    }
  }, 300_000);

  /** A daemon heartbeat (an earlier test's, a killed daemon's) ages out by itself: waits for that, up to `withinMs`. */
  async function noDaemon(withinMs = 60_000): Promise<void> {
    expect(await eventually(async () => !(await schedulerAlive(q.redis)), withinMs)).toBe(true);
  }

  it('treats a non-zero exit as a result, retries it only when asked, and never sends bad data to an agent', async () => {
    await noDaemon();
    const a = (agents[0] as AgentProcess).address;
    const pinned = (taskId: string, argv: string[], extra: Partial<TaskInput> = {}): TaskInput => ({
      taskId,
      agents: [a],
      target: { host: a },
      argv,
      ...extra,
    });
    const before = await startedTotal([agents[0] as AgentProcess]);
    const out = await runAndWait(
      {
        runId: 'pin1',
        tasks: [
          pinned('fail', ['sh', '-c', 'echo oops >&2; exit 3']),
          pinned('retry', ['sh', '-c', 'exit 4'], { retry: { attempts: 3, retryOnFailure: true, backoffMs: 10 } }),
          pinned('ok', ['echo', 'hello'], { env: { GREETING: 'x' } }),
        ],
      },
      { settings, signer, connect: connect(), timeoutMs: 30_000 },
    );
    expect(out.inProcess).toBe(true);
    expect(out.results.get('fail')).toMatchObject({ outcome: 'failed', exitCode: 3, attempts: 1, host: a });
    expect(Buffer.concat((out.output.get('fail') ?? []).map((c) => c.data)).toString()).toBe('oops\n');
    expect(out.results.get('retry')).toMatchObject({ outcome: 'failed', exitCode: 4 });
    expect(out.results.get('ok')).toMatchObject({ outcome: 'succeeded', exitCode: 0 });
    expect(Buffer.concat((out.output.get('ok') ?? []).map((c) => c.data)).toString()).toBe('hello\n');
    expect(await startedTotal([agents[0] as AgentProcess])).toBe(before + 5);

    await expect(runAndWait({ runId: 'bad2', tasks: [pinned('x', [])] }, { settings, signer, connect: connect(), timeoutMs: 5000 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(
      runAndWait(
        { runId: 'bad3', tasks: [pinned('x', ['true'], { env: { BIG: 'y'.repeat(100_000) } })] },
        { settings, signer, connect: connect(), timeoutMs: 5000 },
      ),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await startedTotal([agents[0] as AgentProcess])).toBe(before + 5);
  });

  /**
   * The world's connector, counting by address the clients it opens, the Info calls made on them
   * and the most Exec calls in flight at once.
   */
  function countingConnector(): { connect: AgentConnector; clients: Map<string, number>; infos: Map<string, number>; mostExecs: Map<string, number> } {
    const inner = connect();
    const clients = new Map<string, number>();
    const infos = new Map<string, number>();
    const mostExecs = new Map<string, number>();
    const execs = new Map<string, number>();
    const bump = (m: Map<string, number>, k: string, by = 1): number => {
      m.set(k, (m.get(k) ?? 0) + by);
      return m.get(k) as number;
    };
    return {
      clients,
      infos,
      mostExecs,
      connect: (ep) => {
        bump(clients, ep.address);
        const link = inner(ep);
        return {
          exec: (req, o) => ({
            async *[Symbol.asyncIterator]() {
              mostExecs.set(ep.address, Math.max(mostExecs.get(ep.address) ?? 0, bump(execs, ep.address)));
              try {
                yield* link.exec(req, o);
              } finally {
                bump(execs, ep.address, -1);
              }
            },
          }),
          info: () => {
            bump(infos, ep.address);
            return link.info();
          },
          health: () => link.health(),
          cancel: (id) => link.cancel(id),
          warm: () => link.warm(),
          close: () => link.close(),
        };
      },
    };
  }

  it('one connection per agent: a task per host asks no Info; a task list asks each agent once, when it fills, and then uses its capacity', async () => {
    const addrs = agents.map((a) => a.address);
    const perHost = countingConnector();
    const out = await runAndWait(
      { runId: 'conn1', tasks: addrs.map((a, i) => ({ taskId: `h${i}`, agents: [a], target: { host: a }, argv: ['true'] })) },
      { settings, signer, connect: perHost.connect, timeoutMs: 30_000 },
    );
    expect([...out.results.values()].map((r) => r.outcome)).toEqual(addrs.map(() => 'succeeded'));
    expect([...perHost.clients.keys()].sort()).toEqual([...addrs].sort());
    expect([...perHost.clients.values()].every((n) => n === 1)).toBe(true);
    expect(perHost.infos.size).toBe(0);

    // 40 tasks over 4 agents: at the assumed capacity (1) the fifth finds them all full, which
    // asks their capacity (16); after that an agent runs several of them at once.
    const list = countingConnector();
    const many = await runAndWait(
      anyHost('conn2', 40, () => ['sleep', '0.5']),
      { settings, signer, connect: list.connect, timeoutMs: 60_000 },
    );
    const results = [...many.results.values()];
    expect(results.map((r) => r.outcome)).toEqual(results.map(() => 'succeeded'));
    expect(Object.fromEntries(list.infos)).toEqual(Object.fromEntries(addrs.map((a) => [a, 1])));
    expect(Object.fromEntries(list.clients)).toEqual(Object.fromEntries(addrs.map((a) => [a, 1])));
    // The most tasks one agent ran at once, from their reported start and end.
    let most = 0;
    for (const a of addrs) {
      const spans = results.filter((r) => r.host === a).map((r) => [Date.parse(r.finishedAt) - r.durationMs, Date.parse(r.finishedAt)] as const);
      for (const [start] of spans) most = Math.max(most, spans.filter(([s, e]) => s <= start && start < e).length);
    }
    expect(most).toBeGreaterThan(1);

    // A fleet's agent is asked its capacity on the client that pins its identity, the one its
    // tasks use (makePki's agent certificate is spiffe://gaxx/agent/test/h1).
    const a = addrs[2] as string;
    await registerFleet(q.redis, 'test', [{ host: 'h1', address: a }]);
    const fleet = countingConnector();
    const inFleet = await runAndWait(
      { runId: 'conn3', tasks: Array.from({ length: 3 }, (_, i) => ({ taskId: `f${i}`, fleet: 'test', target: { any: true }, argv: ['sleep', '0.2'] })) },
      { settings, signer, connect: fleet.connect, timeoutMs: 30_000 },
    );
    expect([...inFleet.results.values()].map((r) => [r.outcome, r.host])).toEqual([0, 1, 2].map(() => ['succeeded', a]));
    expect(Object.fromEntries(fleet.infos)).toEqual({ [a]: 1 });
    expect(Object.fromEntries(fleet.clients)).toEqual({ [a]: 1 });
  });

  it('a process that works on its run itself connects to the agents before it enqueues, and its worker uses those connections', async () => {
    await noDaemon();
    const addrs = agents.map((a) => a.address);
    const counting = countingConnector();
    const warming = warmingConnector(counting.connect);
    let warmedBeforeEnqueue = -1;
    const out = await runAndWait(
      { runId: 'warm1', tasks: addrs.map((a, i) => ({ taskId: `w${i}`, agents: [a], target: { host: a }, argv: ['true'] })) },
      {
        settings,
        signer,
        connect: warming.connect,
        prewarm: () => {
          warming.warm(addrs.map((address) => ({ address })));
          warmedBeforeEnqueue = counting.clients.size;
        },
        timeoutMs: 30_000,
      },
    );
    warming.close();
    expect([...out.results.values()].map((r) => r.outcome)).toEqual(addrs.map(() => 'succeeded'));
    expect(out.inProcess).toBe(true);
    expect(warmedBeforeEnqueue).toBe(addrs.length);
    // The worker took the warmed links: no second connection to any agent.
    expect(Object.fromEntries(counting.clients)).toEqual(Object.fromEntries(addrs.map((a) => [a, 1])));

    // With a daemon's heartbeat present at enqueue, nothing is warmed (the daemon works on the
    // run); this one is a ghost, so the run is taken over here once its heartbeat lapses.
    await q.redis.zadd(HEARTBEAT_KEY, Date.now() + 2000, 'ghost-warm');
    let prewarmed = false;
    const later = await runAndWait(
      { runId: 'warm2', tasks: [{ taskId: 'x', agents: [addrs[0] as string], target: { host: addrs[0] as string }, argv: ['true'] }] },
      { settings, signer, connect: connect(), prewarm: () => (prewarmed = true), timeoutMs: 30_000 },
    );
    expect(later.results.get('x')?.outcome).toBe('succeeded');
    expect(later.inProcess).toBe(true);
    expect(prewarmed).toBe(false);
  });

  it('never sends an agent more tasks at once than its capacity, also before its Info answers', async () => {
    const small = await startAgent({ certsDir: pki.agent.dir, args: ['--capacity', '2'] });
    const c = countingConnector();
    const out = await runAndWait(
      {
        runId: 'cap1',
        tasks: Array.from({ length: 12 }, (_, i) => ({ taskId: `c${i}`, agents: [small.address], target: { any: true }, argv: ['sleep', '0.2'] })),
      },
      { settings, signer, connect: c.connect, timeoutMs: 60_000 },
    );
    expect([...out.results.values()].map((r) => r.outcome)).toEqual(Array.from({ length: 12 }, () => 'succeeded'));
    expect(c.infos.get(small.address)).toBe(1);
    expect(c.mostExecs.get(small.address)).toBe(2);
    await small.stop();
  });

  it('dispatches fleet tasks by host name and refuses an agent whose certificate names another fleet', async () => {
    const a = (agents[1] as AgentProcess).address;
    // makePki's agent certificate is spiffe://gaxx/agent/test/h1.
    await registerFleet(q.redis, 'test', [{ host: 'h1', address: a }]);
    await registerFleet(q.redis, 'impostor', [{ host: 'h1', address: a }]);
    const before = await startedTotal([agents[1] as AgentProcess]);
    const out = await runAndWait(
      {
        runId: 'fleet2',
        tasks: [
          { taskId: 'pinned', fleet: 'test', target: { host: 'h1' }, argv: ['true'] },
          { taskId: 'any', fleet: 'test', target: { any: true }, argv: ['true'] },
          { taskId: 'wrong', fleet: 'impostor', target: { host: 'h1' }, argv: ['true'] },
          { taskId: 'nohost', fleet: 'test', target: { host: 'h9' }, argv: ['true'] },
        ],
      },
      { settings, signer, connect: connect(), timeoutMs: 30_000 },
    );
    expect(out.results.get('pinned')).toMatchObject({ outcome: 'succeeded', host: a });
    expect(out.results.get('any')).toMatchObject({ outcome: 'succeeded', host: a });
    expect(out.results.get('wrong')).toMatchObject({ outcome: 'error', reason: 'IDENTITY_MISMATCH' });
    expect(out.results.get('nohost')).toMatchObject({ outcome: 'error', reason: 'NOT_FOUND' });
    expect(await startedTotal([agents[1] as AgentProcess])).toBe(before + 2);
  });

  it('never dispatches job data written around enqueue validation; reports it as an error result', async () => {
    const a = (agents[0] as AgentProcess).address;
    const before = await startedTotal();
    await q.queueFor('raw1').add('raw', { runId: 'raw1', taskId: 't', agents: [a], target: { host: a }, argv: 'true' } as never, { jobId: 'raw1-t' });
    await q.redis.zadd('{gaxx}:runs', Date.now(), 'raw1');
    const w = SchedulerWorker.start({ settings, connect: connect(), concurrency: 2 });
    try {
      const res = await waitForRun(q.redis, 'raw1', ['t'], { timeoutMs: 20_000 });
      expect(res.results.get('t')).toMatchObject({ outcome: 'error', reason: 'INVALID_ARGUMENT', attempts: 0 });
      expect(await startedTotal()).toBe(before);
    } finally {
      await w.drain(5000);
    }
  });

  it('takes over in-process when the daemon whose heartbeat it saw goes away', async () => {
    await noDaemon();
    const a = (agents[0] as AgentProcess).address;
    await q.redis.zadd(HEARTBEAT_KEY, Date.now() + 2500, 'ghost');
    const out = await runAndWait(
      { runId: 'ghost1', tasks: [{ taskId: 'x', agents: [a], target: { host: a }, argv: ['true'] }] },
      { settings, signer, connect: connect(), timeoutMs: 30_000 },
    );
    expect(out.inProcess).toBe(true);
    expect(out.results.get('x')?.outcome).toBe('succeeded');
  });

  it('ends a pinned task on an unreachable agent as unreachable after its attempts, saying how they were spent', async () => {
    const dead = '127.0.0.1:1';
    const out = await runAndWait(
      { runId: 'dead1', tasks: [{ taskId: 'x', agents: [dead], target: { host: dead }, argv: ['true'], retry: { attempts: 6, backoffMs: 20 } }] },
      { settings, signer, connect: connect(), timeoutMs: 60_000 },
    );
    const r = out.results.get('x');
    expect(r).toMatchObject({ outcome: 'unreachable', reason: 'UNAVAILABLE' });
    // The breaker opens after 3 failed requests; the other tries were waits on it: all 6 are
    // said, not only the `attempts` (requests sent).
    const tries = /; (\d+) tries: (\d+) sent, (\d+) while its circuit breaker was open \(not sent\)$/.exec(r?.error ?? '');
    expect(tries, r?.error).not.toBeNull();
    expect(tries?.slice(1).map(Number)).toEqual([6, r?.attempts, 6 - (r?.attempts ?? 0)]);
    expect(r?.attempts).toBeLessThan(6);
  });
});
