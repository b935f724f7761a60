/**
 * Time to the user under faults (measured, never asserted; `npm run bench:faults`):
 *  - "Redis dies" -> "the user is told": a run waits on two running tasks, redis-server gets
 *    kill -9; time until `gaxx run`'s wait reports it (onRedis), then until one Ctrl-C ends it.
 *  - "agent stalls" -> "run completes": 200 any-host tasks over two agents, one agent SIGSTOPped
 *    for STALL_MS after a quarter of them (longer than the streams' keepalive), then SIGCONT;
 *    time from the stall to the run's end, beside the same run without a stall.
 * Needs redis-server; builds first.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCertDir } from '../certs/index.js';
import type { TaskSigner } from '../proto/index.js';
import { agentConnector } from '../scheduler/dispatch/connector.js';
import { SchedulerWorker } from '../scheduler/dispatch/worker.js';
import { TaskQueue } from '../scheduler/queue/queue.js';
import { runDoneKey } from '../scheduler/queue/results.js';
import { runAndWait } from '../scheduler/queue/run.js';
import { waitForRun } from '../scheduler/queue/wait.js';
import { redisSettingsFromUrl } from '../scheduler/redis/redis.js';
import { startAgent, type AgentProcess } from '../test/helpers/agent.js';
import { makePki, type Pki } from '../test/helpers/pki.js';
import { startRedis } from '../test/helpers/redis.js';
import { operatorSigner } from '../test/helpers/scheduler-world.js';
import { refuseCrowdedAgentUser } from './lib/agent-room.js';
import { benchArgs } from './lib/args.js';
import { cleanUpOnSignal, stopStarted } from './lib/on-signal.js';

const STALL_MS = Number(process.env.BENCH_STALL_MS ?? 6000);
const KEEPALIVE = { timeMs: 1000, timeoutMs: 1000 };
const GUARDS = ['--guards', JSON.stringify({ minPingIntervalMs: 500 })];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function redisDies(pki: Pki, agents: AgentProcess[]): Promise<{ toldMs: number; endedMs: number }> {
  const redis = await startRedis();
  const cancel = new AbortController();
  let killedAt = 0;
  let toldAt = 0;
  let started = 0;
  const run = runAndWait(
    {
      runId: `rd${Date.now()}`,
      tasks: agents.map((a, i) => ({ taskId: `t${i}`, agents: [a.address], target: { host: a.address }, argv: ['sh', '-c', 'echo go; sleep 30'] })),
    },
    {
      settings: redisSettingsFromUrl(redis.url),
      signer: operatorSigner(pki.clients.operator.dir),
      connect: agentConnector(loadCertDir(pki.clients.scheduler.dir)),
      worker: 'always',
      cancel: cancel.signal,
      onLive: () => void (started += 1),
      onRedis: (down) => {
        if (!down || toldAt) return;
        toldAt = performance.now();
        cancel.abort();
      },
    },
  );
  while (started < agents.length) await sleep(20);
  killedAt = performance.now();
  await redis.kill9();
  await run;
  const endedAt = performance.now();
  await redis.destroy();
  return { toldMs: toldAt - killedAt, endedMs: endedAt - killedAt };
}

async function anyHostRun(
  q: TaskQueue,
  signer: TaskSigner,
  agents: AgentProcess[],
  runId: string,
  stall?: AgentProcess,
): Promise<{ totalMs: number; fromStallMs: number }> {
  const tasks = Array.from({ length: 200 }, (_, i) => ({
    taskId: `t${i}`,
    agents: agents.map((a) => a.address),
    target: { any: true as const },
    argv: ['sleep', '0.1'],
  }));
  const t0 = performance.now();
  const enq = await q.enqueueRun({ runId, tasks }, signer);
  const waiting = waitForRun(q.redis, runId, enq.taskIds, { timeoutMs: 600_000 });
  let stalledAt = t0;
  if (stall) {
    while ((await q.redis.hlen(runDoneKey(runId))) < 50) await sleep(20);
    stalledAt = performance.now();
    stall.kill('SIGSTOP');
    setTimeout(() => stall.kill('SIGCONT'), STALL_MS);
  }
  const res = await waiting;
  const end = performance.now();
  const bad = [...res.results.values()].filter((r) => r.outcome !== 'succeeded' || r.startedOn.length > 1).length;
  if (bad > 0) console.log(`  (${bad} tasks not succeeded once in ${runId})`);
  return { totalMs: end - t0, fromStallMs: end - stalledAt };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gxbf-'));
  // Stopped by a signal (Ctrl-C, `timeout`): nothing it started is left running.
  cleanUpOnSignal(() => stopStarted(dir));
  try {
    const pki = await makePki(dir);
    const agents = await Promise.all([0, 1].map(() => startAgent({ certsDir: pki.agent.dir, metrics: false, args: [...GUARDS, '--capacity', '8'] })));
    const told: Array<{ toldMs: number; endedMs: number }> = [];
    for (let i = 0; i < 3; i++) told.push(await redisDies(pki, agents));
    const redis = await startRedis();
    const settings = redisSettingsFromUrl(redis.url);
    const q = await TaskQueue.open(settings);
    const worker = SchedulerWorker.start({
      settings,
      connect: agentConnector(loadCertDir(pki.clients.scheduler.dir), { keepalive: KEEPALIVE }),
      concurrency: 32,
    });
    await worker.ready();
    const signer = operatorSigner(pki.clients.operator.dir);
    const base = await anyHostRun(q, signer, agents, 'nostall');
    const stalled = await anyHostRun(q, signer, agents, 'stall', agents[0]);
    await worker.drain(5000);
    await q.close();
    await redis.destroy();
    const med = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    console.log('fault bench (2 agents)');
    console.log(
      `  redis kill -9 -> user told        median ${med(told.map((t) => t.toldMs)).toFixed(0)} ms (${told.map((t) => t.toldMs.toFixed(0)).join(', ')})`,
    );
    console.log(`  redis kill -9 -> run ended (^C)   median ${med(told.map((t) => t.endedMs)).toFixed(0)} ms (Ctrl-C sent when told)`);
    console.log(`  200 any-host tasks, no stall      ${base.totalMs.toFixed(0)} ms`);
    console.log(
      `  agent stalled ${STALL_MS} ms -> run completes ${stalled.fromStallMs.toFixed(0)} ms after the stall (run total ${stalled.totalMs.toFixed(0)} ms)`,
    );
  } finally {
    await stopStarted(dir);
  }
}

benchArgs('usage: node dist/bench/faults.js\n  environment: BENCH_STALL_MS (how long an agent is stopped, default 6000)', {});
await refuseCrowdedAgentUser();
await main();
process.exit(0);
