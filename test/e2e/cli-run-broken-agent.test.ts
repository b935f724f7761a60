// The built CLI's `gaxx run` over two real agents, one of which cannot set tasks up: its tasks
// dir was made unwritable after it started (as a read-only remount of its data dir would), or its
// sandbox cannot start (bwrap cannot fork under a process limit of 1, after the agent said the
// sandbox's process started). That agent's refusals are its own failure, not the commands':
// every any-host task runs on the other agent, started there only, and the run exits 0; a task
// pinned to the broken agent never ran there (exit 12, naming why), and none is reported as a
// command that failed.
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { auditEvents, markerDir, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { jsonLines, runGaxx, stopAllGaxx, type CliRun } from '../helpers/cli.js';
import { homeAgentCerts, initHome } from '../helpers/cli-world.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

let home: string;
let redis: TestRedis;
let good: AgentProcess;
let broken: AgentProcess;
let noSandbox: AgentProcess;
let lists: string;

const gaxx = (args: string[]): Promise<CliRun> => runGaxx(args, { home, env: { GAXX_REDIS_URL: redis.url } });
const tasksOf = (r: CliRun) => jsonLines(r.stdout).filter((x) => x.type === 'task');

beforeAll(async () => {
  home = await initHome('gxba-');
  redis = await startRedis();
  const certs = await homeAgentCerts(home);
  [good, broken, noSandbox] = (await Promise.all(
    [[], [], ['--task-limits', '{"isolation":"rlimit","processes":1}']].map((args) => startAgent({ certsDir: certs, args })),
  )) as [AgentProcess, AgentProcess, AgentProcess];
  // No directory can be made in the broken agent's tasks dir from now on (its owner is not the agent's user).
  const tasks = join(broken.dataDir, 'tasks');
  mkdirSync(tasks, { recursive: true });
  chmodSync(tasks, 0o555);
  lists = markerDir('gxba-lists');
});

afterAll(async () => {
  await stopAllGaxx();
  await stopAllAgents();
  await redis?.destroy();
  for (const dir of [home, lists]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('gaxx run with an agent that cannot set tasks up', () => {
  it('runs every any-host task on the other agent, none counted as a failed command, and exits 0', async () => {
    const list = join(lists, 'records.txt');
    writeFileSync(list, `${Array.from({ length: 24 }, (_, i) => `r${i}`).join('\n')}\n`);
    const agents = [good, broken].map((a) => a.address).join(',');
    const r = await gaxx(['run', '--json', '--retry-on-failure', '--retries', '2', '--agent', agents, '--tasks', list, '--', 'sh', '-c', 'echo $1', '_', '{}']);
    const tasks = tasksOf(r);
    expect(tasks).toHaveLength(24);
    expect(tasks.filter((t) => t.outcome !== 'succeeded')).toEqual([]);
    expect(new Set(tasks.map((t) => t.host))).toEqual(new Set([good.address]));
    expect(tasks.map((t) => t.stdout).sort()).toEqual(Array.from({ length: 24 }, (_, i) => `r${i}\n`).sort());
    expect(r.code, r.stderr).toBe(0);
    // The broken agent was asked, and refused as not started (never an exit of the command).
    const there = auditEvents(broken.auditLog).filter((e) => String(e.event).startsWith('exec_'));
    expect(there.length).toBeGreaterThan(0);
    expect(new Set(there.map((e) => `${String(e.event)} ${String(e.code)}`))).toEqual(new Set(['exec_refused UNAVAILABLE']));
  });

  it('runs every any-host task on the other agent when its sandbox cannot start: started there only', async () => {
    const list = join(lists, 'records-sandbox.txt');
    writeFileSync(list, `${Array.from({ length: 12 }, (_, i) => `s${i}`).join('\n')}\n`);
    const r = await gaxx([
      'run',
      '--json',
      '--agent',
      [good, noSandbox].map((a) => a.address).join(','),
      '--tasks',
      list,
      '--',
      'sh',
      '-c',
      'echo $1',
      '_',
      '{}',
    ]);
    const tasks = tasksOf(r);
    expect(tasks).toHaveLength(12);
    expect(tasks.filter((t) => t.outcome !== 'succeeded')).toEqual([]);
    for (const t of tasks) expect(t).toMatchObject({ host: good.address, startedOn: [good.address], mayHaveRepeated: false });
    expect(r.code, r.stderr).toBe(0);
    // Its sandboxes' processes started there (audited with their pids), and ran nothing.
    const there = auditEvents(noSandbox.auditLog).filter((e) => e.event === 'exec_refused');
    expect(there.length).toBeGreaterThan(0);
  });

  it('reports a task pinned to it as never run there (exit 12), not as a failed command', async () => {
    const r = await gaxx(['run', '--json', '--agent', [good, broken].map((a) => a.address).join(','), '--', 'sh', '-c', 'echo hi']);
    const byHost = new Map(tasksOf(r).map((t) => [t.host, t]));
    expect(byHost.get(good.address)).toMatchObject({ outcome: 'succeeded', exitCode: 0 });
    const there = byHost.get(broken.address);
    expect(there).toMatchObject({ outcome: 'unreachable', exitCode: null });
    expect(String(there?.error)).toMatch(/could not set it up: work dir .*tasks.*EACCES/);
    expect(r.code, r.stderr).toBe(exitCodeFor('UNAVAILABLE'));
  });
});
