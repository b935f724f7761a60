/**
 * Scheduler throughput and latency, measured against baselines in the same run:
 *  - end to end: 5,000 `true` tasks over 4 local agents through the queue (in-process worker)
 *  - raw BullMQ: the same number of jobs, same Redis, same concurrency, no-op processor
 *  - agent-direct: the same Execs through AgentClient, same concurrency, no queue
 *  - idle latency: enqueue -> result for one task, p50/p99 over 200 single-task runs, the
 *    median of each phase: enqueue, pick-up (job taken -> Exec called), to started, to exit,
 *    result back (bench/lib/latency-phases.ts), and per run, for this process, the agent, its
 *    task launcher and redis-server, the time each spent on a CPU and the time each was
 *    runnable but waiting for one (woken, not yet running: /proc schedstat), and the whole
 *    machine's busy time per run (the tasks' sandboxes too) against the wall time it took
 *  - run start: a daemon's new BullMQ worker -> its first job, on a plain connection and on one
 *    whose blocking connection was readied ahead (dispatch/spare-connection.ts)
 * Prints ratios. Run with `npm run bench:scheduler` (builds first). Needs redis-server.
 * `--latency-only` measures the idle latency alone (after the warm-up), e.g. under --cpu-prof;
 * `--unsafe-no-isolation` starts the agents without their sandbox, so that what the sandbox adds
 * to the idle latency is read by difference.
 */
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { loadCertDir } from '../certs/index.js';
import { createTaskSigner, type TaskSigner } from '../proto/index.js';
import { AgentClient } from '../scheduler/client/index.js';
import { agentConnector } from '../scheduler/dispatch/connector.js';
import { TaskQueue } from '../scheduler/queue/queue.js';
import type { Redis } from 'ioredis';
import { KEY_PREFIX, createRedis, redisSettingsFromUrl, waitReady, type RedisSettings } from '../scheduler/redis/redis.js';
import { keepSpareConnection } from '../scheduler/dispatch/spare-connection.js';
import { waitForRun } from '../scheduler/queue/wait.js';
import { SchedulerWorker } from '../scheduler/dispatch/worker.js';
import { startAgent, type AgentProcess } from '../test/helpers/agent.js';
import { makePki } from '../test/helpers/pki.js';
import { metricValue, scrapeMetrics } from '../test/helpers/metrics.js';
import { startRedis } from '../test/helpers/redis.js';
import { refuseCrowdedAgentUser } from './lib/agent-room.js';
import { benchArgs } from './lib/args.js';
import { formatPhases, phaseMedians, tracingConnector, type LinkMoment, type PhaseName, type RunMoments } from './lib/latency-phases.js';
import { machineCpu } from './lib/machine-cpu.js';
import { cleanUpOnSignal, stopStarted } from './lib/on-signal.js';
import { launcherOf, schedOf, schedPer } from './lib/process-cpu.js';
import { median } from './lib/timing.js';

const N = Number(process.env.BENCH_TASKS ?? 5000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const LATENCY_RUNS = 200;

async function rawBullmq(settings: RedisSettings): Promise<number> {
  const conn = createRedis(settings, 'worker');
  const queue = new Queue('bench-raw', { connection: conn, prefix: KEY_PREFIX });
  await queue.obliterate({ force: true });
  let done = 0;
  let finish: () => void = () => undefined;
  const all = new Promise<void>((r) => (finish = r));
  const worker = new Worker(
    'bench-raw',
    async () => {
      if (++done === N) finish();
    },
    { connection: createRedis(settings, 'worker'), prefix: KEY_PREFIX, concurrency: CONCURRENCY, autorun: false },
  );
  await queue.addBulk(Array.from({ length: N }, (_, i) => ({ name: 'x', data: { i }, opts: { jobId: `raw-${i}`, removeOnComplete: true } })));
  const t0 = performance.now();
  void worker.run();
  await all;
  const s = (performance.now() - t0) / 1000;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  conn.disconnect();
  return N / s;
}

/** Wall and CPU ms from `new Worker` to its first job. */
type StartTime = { ms: number; cpuMs: number };

/** Median StartTime over `n` fresh queues (the first 5 warm up); `spare` readies each one's connection ahead. */
async function workerStart(settings: RedisSettings, spare: boolean, n = 40): Promise<StartTime> {
  const conn = createRedis(settings, 'worker') as Redis;
  const producer = createRedis(settings, 'worker');
  await Promise.all([waitReady(conn), waitReady(producer)]);
  const keeper = spare ? keepSpareConnection(conn) : undefined;
  const ms: number[] = [];
  const cpu: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const name = `bench-start-${spare ? 's' : 'p'}${i}`;
      const q = new Queue(name, { connection: producer, prefix: KEY_PREFIX });
      await q.add('x', {}, { jobId: 'j' });
      // As the daemon: the spare is made at a quiet moment, before the run comes.
      keeper?.refill();
      await keeper?.ready();
      let first!: (t: number) => void;
      const got = new Promise<number>((r) => (first = r));
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const w = new Worker(name, async () => first(performance.now() - t0), { connection: conn, prefix: KEY_PREFIX, concurrency: CONCURRENCY });
      ms.push(await got);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
      await w.close();
      await q.obliterate({ force: true });
      await q.close();
    }
  } finally {
    keeper?.close();
    conn.disconnect();
    producer.disconnect();
  }
  const mid = (a: number[]): number => median(a.slice(5));
  return { ms: mid(ms), cpuMs: mid(cpu) };
}

async function agentDirect(agents: AgentProcess[], certsDir: string): Promise<number> {
  const creds = loadCertDir(certsDir);
  const clients = agents.map((a) => AgentClient.connect({ address: a.address }, creds));
  await Promise.all(clients.map((c) => c.info()));
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, lane) => {
      const c = clients[lane % clients.length] as AgentClient;
      for (let i = next++; i < N; i = next++) await c.run({ taskId: `direct-${i}`, argv: ['true'] });
    }),
  );
  const s = (performance.now() - t0) / 1000;
  for (const c of clients) c.close();
  return N / s;
}

async function endToEnd(q: TaskQueue, signer: TaskSigner, agents: AgentProcess[], runId: string, n: number): Promise<number> {
  const tasks = Array.from({ length: n }, (_, i) => ({
    taskId: `t${i}`,
    agents: agents.map((a) => a.address),
    target: { any: true as const },
    argv: ['true'],
  }));
  const t0 = performance.now();
  // Signing each task is part of the measured path: `gaxx run` pays it too.
  const enq = await q.enqueueRun({ runId, tasks }, signer);
  await waitForRun(q.redis, runId, enq.taskIds, { timeoutMs: 600_000 });
  return n / ((performance.now() - t0) / 1000);
}

/** The worker's moments of the run being timed (set by latency(), filled by the tracing connector). */
let tracing: Partial<Record<LinkMoment, number>> | undefined;

type Sched = Record<string, { cpuMs: number; waitMs: number }>;

async function latency(
  q: TaskQueue,
  signer: TaskSigner,
  agent: AgentProcess,
  redisPid: number | undefined,
): Promise<{
  p50: number;
  p99: number;
  cpuMsPerRun: number;
  phases: Record<PhaseName, number | undefined>;
  sched: Sched;
  machine: { busyMs: number; floorMs: number; wallMs: number };
}> {
  const ms: number[] = [];
  const runs: RunMoments[] = [];
  const pids = { 'this process': process.pid, agent: agent.pid, launcher: launcherOf(agent.pid), 'redis-server': redisPid };
  const sched0 = schedOf(pids);
  const machine = machineCpu();
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < LATENCY_RUNS; i++) {
    const worker: Partial<Record<LinkMoment, number>> = {};
    tracing = worker;
    const start = performance.now();
    const runId = `lat${i}`;
    const enq = await q.enqueueRun({ runId, tasks: [{ taskId: 't', agents: [agent.address], target: { host: agent.address }, argv: ['true'] }] }, signer);
    const enqueued = performance.now();
    await waitForRun(q.redis, runId, enq.taskIds, { timeoutMs: 30_000 });
    const done = performance.now();
    tracing = undefined;
    ms.push(done - start);
    runs.push({ start, enqueued, ...worker, done });
    // As `gaxx run` does once it has the results: the run's queue goes, and the daemon stops serving it.
    await q.forgetRun(runId);
  }
  const cpu = process.cpuUsage(cpu0);
  const sched = schedPer(sched0, schedOf(pids), LATENCY_RUNS);
  const busy = machine.stop();
  const wallMs = performance.now() - wall0;
  ms.sort((a, b) => a - b);
  return {
    p50: ms[Math.floor(ms.length * 0.5)] as number,
    p99: ms[Math.floor(ms.length * 0.99)] as number,
    // This process enqueues, dispatches (its in-process worker) and waits: all of a run but the agent's part.
    cpuMsPerRun: (cpu.user + cpu.system) / 1000 / LATENCY_RUNS,
    phases: phaseMedians(runs),
    sched,
    machine: { busyMs: busy.busyMs / LATENCY_RUNS, floorMs: busy.floorMs / LATENCY_RUNS, wallMs: wallMs / LATENCY_RUNS },
  };
}

async function main(latencyOnly: boolean, unsandboxed: boolean): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gxb-'));
  // Stopped by a signal (Ctrl-C, `timeout`): nothing it started is left running.
  cleanUpOnSignal(() => stopStarted(dir));
  const redis = await startRedis();
  try {
    const pki = await makePki(dir);
    const settings = redisSettingsFromUrl(redis.url);
    const agents = await Promise.all(
      // The first serves the latency runs: its metrics say how many of them started warm.
      [0, 1, 2, 3].map((i) =>
        startAgent({ certsDir: pki.agent.dir, metrics: i === 0, args: ['--capacity', String(CONCURRENCY), ...(unsandboxed ? ['--unsafe-no-isolation'] : [])] }),
      ),
    );
    const raw = latencyOnly ? undefined : await rawBullmq(settings);
    // Alternated, so both see the same machine.
    const starts = { plain: [] as StartTime[], spare: [] as StartTime[] };
    for (let r = 0; r < (latencyOnly ? 0 : 2); r++) {
      starts.plain.push(await workerStart(settings, false));
      starts.spare.push(await workerStart(settings, true));
    }
    // Direct Exec is an operator's path (a scheduler's Exec must carry a signature).
    const direct = latencyOnly ? undefined : await agentDirect(agents, pki.clients.operator.dir);
    const op = loadCertDir(pki.clients.operator.dir);
    const signer = createTaskSigner(op.certPem, op.keyPem);
    const q = await TaskQueue.open(settings);
    // The worker's Exec calls report their moments to the latency run being timed (the first of each).
    const connect = tracingConnector(agentConnector(loadCertDir(pki.clients.scheduler.dir)), (moment, at) => {
      if (tracing && tracing[moment] === undefined) tracing[moment] = at;
    });
    const worker = SchedulerWorker.start({ settings, connect, concurrency: CONCURRENCY });
    await worker.ready();
    await endToEnd(q, signer, agents, 'warm', 200);
    const e2e = latencyOnly ? undefined : await endToEnd(q, signer, agents, 'bench', N);
    const first = agents[0] as AgentProcess;
    const warmStarts = async (): Promise<number> =>
      metricValue(await scrapeMetrics(first.metricsPort as number, pki.clients.operator.dir), 'gaxx_agent_warm_starts_total');
    const warm0 = await warmStarts();
    const lat = await latency(q, signer, first, redis.pid());
    const warm = (await warmStarts()) - warm0;
    await worker.drain(5000);
    await q.close();
    if (raw !== undefined && direct !== undefined && e2e !== undefined) {
      console.log(`scheduler bench: ${N} tasks, concurrency ${CONCURRENCY}, 4 agents`);
      console.log(`  raw BullMQ no-op          ${raw.toFixed(0).padStart(7)} jobs/s`);
      console.log(`  agent-direct Exec         ${direct.toFixed(0).padStart(7)} tasks/s`);
      console.log(`  end-to-end through queue  ${e2e.toFixed(0).padStart(7)} tasks/s`);
      console.log(`  agent-direct / end-to-end ${(direct / e2e).toFixed(2).padStart(7)}x  (target <= 2x)`);
      console.log(`  raw BullMQ / end-to-end   ${(raw / e2e).toFixed(2).padStart(7)}x`);
    } else console.log(`scheduler bench, latency only: one local agent, after 200 warm-up tasks over 4`);
    if (unsandboxed) console.log('  the agents run tasks WITHOUT their sandbox (--unsafe-no-isolation)');
    console.log(`  idle enqueue->result      p50 ${lat.p50.toFixed(1)} ms, p99 ${lat.p99.toFixed(1)} ms (${LATENCY_RUNS} single-task runs)`);
    console.log(`    phases (median ms)      ${formatPhases(lat.phases)}`);
    console.log(
      `    started warm            ${warm} of ${LATENCY_RUNS} ${unsandboxed ? '(nothing is started ahead without a sandbox)' : '(in a sandbox started ahead; the others cold)'}`,
    );
    console.log(`    CPU of this process     ${lat.cpuMsPerRun.toFixed(2)} ms per run (enqueue, dispatch and wait)`);
    const per = (k: 'cpuMs' | 'waitMs'): string =>
      `${Object.values(lat.sched)
        .reduce((n, x) => n + x[k], 0)
        .toFixed(2)} ms per run (${Object.entries(lat.sched)
        .map(([name, x]) => `${name} ${x[k].toFixed(2)}`)
        .join(', ')})`;
    console.log(`    on a CPU                ${per('cpuMs')}`);
    console.log(`    waiting for a CPU       ${per('waitMs')}`);
    const m = lat.machine;
    console.log(
      `    the whole machine       ${m.busyMs.toFixed(1)} ms busy per run (the sandboxes and tasks too; /proc/stat, 10 ms ticks): at least ${m.floorMs.toFixed(1)} ms of wall on ${cpus().length} cores, of ${m.wallMs.toFixed(1)} ms per run (mean; forgetting the run included)`,
    );
    if (latencyOnly) return;
    const fmt = (xs: StartTime[]): string => xs.map((x) => `${x.ms.toFixed(1)} ms / ${x.cpuMs.toFixed(1)} ms CPU`).join(', ');
    console.log(`  run start, new worker -> first job (median of 35, two rounds):`);
    console.log(`    plain connection        ${fmt(starts.plain)}`);
    console.log(`    spare readied ahead     ${fmt(starts.spare)}`);
    const sum = (xs: StartTime[], k: keyof StartTime): number => xs.reduce((n, x) => n + x[k], 0);
    console.log(
      `    plain / spare           ${(sum(starts.plain, 'ms') / sum(starts.spare, 'ms')).toFixed(2)}x time, ${(sum(starts.plain, 'cpuMs') / sum(starts.spare, 'cpuMs')).toFixed(2)}x CPU`,
    );
  } finally {
    await stopStarted(dir);
  }
}

const flags = benchArgs(
  'usage: node dist/bench/scheduler.js [--latency-only] [--unsafe-no-isolation]\n  --latency-only         only the idle enqueue->result latency (after a short warm-up), e.g. to profile its path\n  --unsafe-no-isolation  the agents run tasks without their sandbox (what the sandbox costs, by difference)\n  environment: BENCH_TASKS (default 5000), BENCH_CONCURRENCY (default 64)',
  { 'latency-only': { type: 'boolean' }, 'unsafe-no-isolation': { type: 'boolean' } },
);
await refuseCrowdedAgentUser();
await main(flags['latency-only'] === true, flags['unsafe-no-isolation'] === true);
process.exit(0);
