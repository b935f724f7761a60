/**
 * `npm run bench:footprint`: the agent's memory. RSS of an idle agent (bare Node beside it as
 * the baseline, measured in the same run), after 10,000 finished `true` tasks, and again once
 * their registry entries have expired (the agent keeps finished tasks 10 minutes for replay,
 * swept every 30 s: the full run takes ~11 minutes; --no-expiry skips that wait).
 *
 *   node dist/bench/agent-footprint.js [--tasks N] [--in-flight N] [--no-expiry] [--env K=V ...] [--no-agent-env] [--no-metrics] [--json]
 *
 * --env adds to the agent's environment (e.g. --env MALLOC_ARENA_MAX=1 to compare allocator
 * settings); --no-metrics starts it without the metrics listener every fleet's agent has;
 * --no-agent-env starts it without the allocator settings every agent gets
 * (AGENT_ENV), as before them. Besides RSS, its anonymous part (the heaps: V8's and malloc's) is
 * printed, from /proc/<pid>/status, and split by where it lives (glibc's main arena, its other
 * arenas, the rest: mostly V8), from /proc/<pid>/smaps. And what the idle agent costs while it
 * waits: its CPU time and its main thread's wake-ups (voluntary context switches) per second.
 * Its task launcher (a process of its own, started with the agent) is measured beside it, and
 * the two together with each physical page counted once (they share Node's and the libraries'
 * pages, which their RSS both count; bench/lib/resident-pages.ts; as root only).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentClient } from '../scheduler/client/index.js';
import { refuseCrowdedAgentUser } from './lib/agent-room.js';
import { benchArgs } from './lib/args.js';
import { startFixture } from './lib/fixture.js';
import { launcherOf } from './lib/process-cpu.js';
import { residentTogether } from './lib/resident-pages.js';

const MiB = 1024 * 1024;
/** How long after its start an agent is left before its idle cost is measured. */
const IDLE_SETTLE_MS = 15_000;
/** The agent's finished-task retention (agent/tasks.ts) plus one sweep and a margin. */
const EXPIRY_WAIT_MS = 10 * 60_000 + 30_000 + 15_000;

/** Resident set size of `pid` in bytes, from /proc. */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Anonymous resident memory of `pid` in bytes (heaps, not mapped files), from /proc. */
function rssAnon(pid: number): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Where a process's anonymous memory lives, in MiB resident, from /proc/<pid>/smaps. */
interface Heaps {
  /** glibc's main arena (the brk heap, `[heap]`). */
  mallocMain: number;
  /** glibc's other arenas: anonymous mappings aligned to and at most HEAP_MAX_SIZE (64 MiB). */
  mallocArenas: number;
  /** Every other anonymous mapping: mostly V8's heap and code. */
  otherAnon: number;
}

const ARENA_BYTES = 64n * 1024n * 1024n;

function heapsOf(pid: number): Heaps {
  const h: Heaps = { mallocMain: 0, mallocArenas: 0, otherAnon: 0 };
  let kind: keyof Heaps | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      const start = BigInt(`0x${m[1]}`);
      const size = BigInt(`0x${m[2]}`) - start;
      const name = m[3] ?? '';
      kind = name === '[heap]' ? 'mallocMain' : name !== '' ? undefined : start % ARENA_BYTES === 0n && size <= ARENA_BYTES ? 'mallocArenas' : 'otherAnon';
      continue;
    }
    const rssKb = /^Rss:\s+(\d+) kB/.exec(line);
    if (rssKb && kind) h[kind] += Number(rssKb[1]) / 1024;
  }
  return h;
}

/** CPU time of `pid` in ns (all its threads, from schedstat) and its main thread's voluntary context switches. */
function idleCounters(pid: number): { cpuNs: number; wakeups: number } {
  let cpuNs = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      cpuNs += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return { cpuNs, wakeups: Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? NaN) };
}

/** CPU ms and main-thread wake-ups per second of an agent left alone for `ms`. */
async function idleCost(pid: number, ms = 5000): Promise<{ cpuMsPerS: number; wakeupsPerS: number }> {
  const a = idleCounters(pid);
  const t0 = performance.now();
  await sleep(ms);
  const b = idleCounters(pid);
  const s = (performance.now() - t0) / 1000;
  return { cpuMsPerS: (b.cpuNs - a.cpuNs) / 1e6 / s, wakeupsPerS: (b.wakeups - a.wakeups) / s };
}

/** Median of 5 samples 200 ms apart (RSS moves with GC). */
async function settledRss(pid: number, of: (pid: number) => number = rss): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 5; i++) {
    xs.push(of(pid));
    await sleep(200);
  }
  return xs.sort((a, b) => a - b)[2] as number;
}

/** RSS of a bare Node process that only waits: the floor any Node daemon starts from. */
async function bareNodeRss(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await sleep(500);
  const v = await settledRss(child.pid as number);
  child.kill('SIGKILL');
  return v;
}

async function main(): Promise<void> {
  const values = benchArgs(
    'usage: node dist/bench/agent-footprint.js [--tasks N] [--in-flight N] [--no-expiry] [--env K=V ...] [--no-agent-env] [--no-metrics] [--json]',
    {
      tasks: { type: 'string' },
      'in-flight': { type: 'string' },
      'no-expiry': { type: 'boolean' },
      env: { type: 'string', multiple: true },
      'no-agent-env': { type: 'boolean' },
      'no-metrics': { type: 'boolean' },
      json: { type: 'boolean' },
    },
  );
  await refuseCrowdedAgentUser();
  const tasks = Number(values.tasks ?? 10_000);
  const inFlight = Number(values['in-flight'] ?? 8);
  const env = Object.fromEntries((values.env ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const started = performance.now();
  const fixture = await startFixture({ capacity: inFlight * 2, env, noAgentEnv: values['no-agent-env'] ?? false, noMetrics: values['no-metrics'] ?? false });
  try {
    const pid = fixture.agent.pid;
    const client = AgentClient.connect({ address: fixture.agent.address, expect: { fleet: 'bench', host: 'h1' } }, fixture.operator);
    await client.info();
    const bare = await bareNodeRss();
    const idle = await settledRss(pid);
    const idleAnon = await settledRss(pid, rssAnon);
    const idleHeaps = heapsOf(pid);
    const launcher = launcherOf(pid);
    const launcherIdle = launcher === undefined ? undefined : await settledRss(launcher);
    /** The agent and its launcher together, each page once (NaN when that cannot be read). */
    const withLauncher = (p: number) => (launcher === undefined ? NaN : (residentTogether([p, launcher]) ?? NaN));
    const togetherIdle = await settledRss(pid, withLauncher);
    // V8 reduces its heaps a few seconds after start (a burst on its helper threads): the idle
    // cost is measured once that has passed.
    await sleep(Math.max(0, IDLE_SETTLE_MS - (performance.now() - started)));
    const idleCpu = await idleCost(pid);
    let next = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        for (let i = next++; i < tasks; i = next++) {
          await client.run({ taskId: `fp-${i}`, argv: ['true'] });
          if (i % 500 === 0) peak = Math.max(peak, rss(pid));
        }
      }),
    );
    const after = await settledRss(pid);
    const afterAnon = await settledRss(pid, rssAnon);
    const afterHeaps = heapsOf(pid);
    const launcherAfter = launcher === undefined ? undefined : await settledRss(launcher);
    const togetherAfter = await settledRss(pid, withLauncher);
    let launcherExpired: number | undefined;
    let togetherExpired: number | undefined;
    let expired: number | undefined;
    let expiredAnon: number | undefined;
    let expiredHeaps: Heaps | undefined;
    if (!values['no-expiry']) {
      process.stderr.write(`waiting ${Math.round(EXPIRY_WAIT_MS / 1000)} s for the finished tasks to expire...\n`);
      await sleep(EXPIRY_WAIT_MS);
      expired = await settledRss(pid);
      expiredAnon = await settledRss(pid, rssAnon);
      expiredHeaps = heapsOf(pid);
      launcherExpired = launcher === undefined ? undefined : await settledRss(launcher);
      togetherExpired = await settledRss(pid, withLauncher);
    }
    client.close();
    const r = {
      tasks,
      env,
      anonMiB: { idle: idleAnon / MiB, afterTasks: afterAnon / MiB, afterExpiry: expiredAnon === undefined ? null : expiredAnon / MiB },
      heapsMiB: { idle: idleHeaps, afterTasks: afterHeaps, afterExpiry: expiredHeaps ?? null },
      idle: idleCpu,
      bareNodeMiB: bare / MiB,
      idleMiB: idle / MiB,
      peakMiB: peak / MiB,
      afterTasksMiB: after / MiB,
      afterExpiryMiB: expired === undefined ? null : expired / MiB,
      launcherMiB: {
        idle: launcherIdle === undefined ? null : launcherIdle / MiB,
        afterTasks: launcherAfter === undefined ? null : launcherAfter / MiB,
        afterExpiry: launcherExpired === undefined ? null : launcherExpired / MiB,
      },
      withLauncherMiB: {
        idle: Number.isNaN(togetherIdle) ? null : togetherIdle / MiB,
        afterTasks: Number.isNaN(togetherAfter) ? null : togetherAfter / MiB,
        afterExpiry: togetherExpired === undefined || Number.isNaN(togetherExpired) ? null : togetherExpired / MiB,
      },
    };
    if (values.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    else {
      const f = (v: number | null) => (v === null ? '-' : `${v.toFixed(1)} MiB`);
      const ratio = (m: { idle: number | null; afterExpiry: number | null }) =>
        m.idle === null || m.afterExpiry === null ? '' : ` (${(m.afterExpiry / m.idle).toFixed(2)}x idle)`;
      process.stdout.write(
        [
          `agent RSS (bare node: ${f(r.bareNodeMiB)})${values['no-agent-env'] ? ', without AGENT_ENV' : ''}${values['no-metrics'] ? ', without metrics' : ''}${Object.keys(env).length ? `, agent env ${JSON.stringify(env)}` : ''}`,
          `idle:                          ${f(r.idleMiB)}  (${(r.idleMiB / r.bareNodeMiB).toFixed(2)}x bare node)`,
          `idle cost:                     ${r.idle.cpuMsPerS.toFixed(2)} ms CPU/s, ${r.idle.wakeupsPerS.toFixed(0)} wake-ups/s of the main thread`,
          `peak while running ${tasks}:   ${f(r.peakMiB)}`,
          `after ${tasks} finished tasks: ${f(r.afterTasksMiB)}  (${(r.afterTasksMiB / r.idleMiB).toFixed(2)}x idle)`,
          `after their entries expired:   ${f(r.afterExpiryMiB)}${r.afterExpiryMiB === null ? '' : `  (${(r.afterExpiryMiB / r.idleMiB).toFixed(2)}x idle)`}`,
          `anonymous part (heaps): idle ${f(r.anonMiB.idle)}, after tasks ${f(r.anonMiB.afterTasks)}, after expiry ${f(r.anonMiB.afterExpiry)}`,
          `its task launcher's RSS:      idle ${f(r.launcherMiB.idle)}, after tasks ${f(r.launcherMiB.afterTasks)}, after expiry ${f(r.launcherMiB.afterExpiry)}`,
          `agent and launcher together:  idle ${f(r.withLauncherMiB.idle)}, after tasks ${f(r.withLauncherMiB.afterTasks)}, after expiry ${f(r.withLauncherMiB.afterExpiry)}${ratio(r.withLauncherMiB)} (each page once${r.withLauncherMiB.idle === null ? ': needs root' : ''})`,
          ...(['mallocMain', 'mallocArenas', 'otherAnon'] as const).map(
            (k) =>
              `  ${{ mallocMain: "glibc's main arena", mallocArenas: "glibc's other arenas", otherAnon: 'other (V8 and the rest)' }[k].padEnd(24)} idle ${f(r.heapsMiB.idle[k])}, after tasks ${f(r.heapsMiB.afterTasks[k])}, after expiry ${f(r.heapsMiB.afterExpiry?.[k] ?? null)}`,
          ),
        ].join('\n') + '\n',
      );
    }
  } finally {
    await fixture.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:footprint: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
