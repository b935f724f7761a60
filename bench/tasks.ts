/**
 * `gaxx run --tasks` throughput, against baselines measured in the same run:
 *  - gaxx: N `true` tasks (one per input line) over 4 local agents (capacity 16 each) through
 *    the built CLI, `gaxx run --fleet bench --tasks FILE -- true` (in-process worker, no daemon)
 *  - parallel: the same N commands run locally by GNU parallel -j 64 (installed with apt-get
 *    when missing and possible; else xargs -P 64)
 *  - direct Exec: the same N Execs through AgentClient at 64 in flight (the scheduler bench's
 *    agent-direct baseline), no queue
 * Prints rates and ratios. `npm run bench:tasks` (builds first); BENCH_TASKS=N for fewer tasks.
 */
import { execFile, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCertDir } from '../certs/index.js';
import { AgentClient } from '../scheduler/client/index.js';
import { CLI_MAIN, cliWorld, type CliWorld } from '../test/helpers/cli-world.js';
import { benchArgs } from './lib/args.js';

const N = Number(process.env.BENCH_TASKS ?? 20_000);
const SLOTS = 64;

function timed(cmd: string, args: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { env, maxBuffer: 1 << 30 }, (err, _o, stderr) =>
      err ? reject(new Error(`${cmd} failed: ${stderr.slice(-500)}`)) : resolve((performance.now() - t0) / 1000),
    ),
  );
}

/** GNU parallel, installed when missing and apt-get is there; undefined: use xargs. */
function parallelBinary(): string | undefined {
  const has = (): boolean => spawnSync('parallel', ['--version'], { stdio: 'ignore' }).status === 0;
  if (has()) return 'parallel';
  if (process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0) {
    spawnSync('apt-get', ['install', '-y', '-q', 'parallel'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  return has() ? 'parallel' : undefined;
}

async function localBaseline(file: string): Promise<{ tool: string; rate: number }> {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
  const bin = parallelBinary();
  const s = bin
    ? await timed(bin, ['--will-cite', '-j', String(SLOTS), '-a', file, 'true'], env)
    : await timed('xargs', ['-P', String(SLOTS), '-n', '1', '-a', file, 'true'], env);
  return { tool: bin ? `parallel -j ${SLOTS}` : `xargs -P ${SLOTS}`, rate: N / s };
}

async function direct(w: CliWorld): Promise<number> {
  // Direct Exec is an operator's path, as `gaxx exec` (a scheduler's Exec must carry an operator's signature).
  const creds = loadCertDir(join(w.home, 'config', 'operator'));
  const clients = w.agents.map((a) => AgentClient.connect({ address: a.address }, creds));
  await Promise.all(clients.map((c) => c.info()));
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: SLOTS }, async (_, lane) => {
      const c = clients[lane % clients.length] as AgentClient;
      for (let i = next++; i < N; i = next++) await c.run({ taskId: `direct-${i}`, argv: ['true', String(i)] });
    }),
  );
  const s = (performance.now() - t0) / 1000;
  for (const c of clients) c.close();
  return N / s;
}

async function main(): Promise<void> {
  const w = await cliWorld(4, 'bench');
  try {
    const file = join(w.home, 'tasks.txt');
    const warm = join(w.home, 'warm.txt');
    writeFileSync(file, `${Array.from({ length: N }, (_, i) => String(i)).join('\n')}\n`);
    writeFileSync(warm, `${Array.from({ length: 200 }, (_, i) => String(i)).join('\n')}\n`);
    const gaxx = (f: string): Promise<number> => timed(process.execPath, [CLI_MAIN, 'run', '--fleet', 'bench', '--tasks', f, '--json', '--', 'true'], w.env);
    await gaxx(warm); // issues the scheduler certificate, warms the agents
    const gaxxRate = N / (await gaxx(file));
    const local = await localBaseline(file);
    const directRate = await direct(w);
    const row = (label: string, v: number, unit: string): string => `  ${label.padEnd(34)} ${v.toFixed(0).padStart(7)} ${unit}`;
    console.log(`tasks bench: ${N} \`true\` tasks, 4 agents x 16 slots, ${SLOTS} local slots`);
    console.log(row('gaxx run --tasks (end to end)', gaxxRate, 'tasks/s'));
    console.log(row(`${local.tool} (local)`, local.rate, 'tasks/s'));
    console.log(row('direct Exec, 64 in flight', directRate, 'tasks/s'));
    console.log(`  ${'local / gaxx'.padEnd(34)} ${(local.rate / gaxxRate).toFixed(2).padStart(7)}x`);
    console.log(`  ${'direct Exec / gaxx'.padEnd(34)} ${(directRate / gaxxRate).toFixed(2).padStart(7)}x`);
  } finally {
    await w.close();
  }
}

benchArgs('usage: node dist/bench/tasks.js\n  environment: BENCH_TASKS (default 20000)', {});
await main();
process.exit(0);
