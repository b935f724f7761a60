// The built CLI with its embedded redis-server killed (-9, by the pid in its state dir) while a
// run goes on, then started again (from its AOF) by another gaxx command: a Redis that comes
// back in time lets the run finish normally, and the run index records its end.
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { socketCommand } from '../../scheduler/redis/embedded-redis.js';
import { markerDir, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { jsonLines, runGaxx, spawnGaxx, stopAllGaxx } from '../helpers/cli.js';
import { homeAgentCerts, initHome } from '../helpers/cli-world.js';
import { taskGate } from '../helpers/gate.js';
import { alive } from '../helpers/procs.js';

let home: string;
let agents: AgentProcess[];
const dirs: string[] = [];

const redisDir = (): string => join(home, 'state', 'redis');
const redisPid = (): number => Number.parseInt(readFileSync(join(redisDir(), 'redis.pid'), 'utf8'), 10);

/** Kills the embedded redis-server with SIGKILL, once it has written everything to its AOF. */
async function killRedis(): Promise<void> {
  const sock = join(redisDir(), 'redis.sock');
  // The embedded server fsyncs every second: make this kill lose nothing the run wrote so far
  // (the write after the switch fsyncs what came before it).
  expect(await socketCommand(sock, 'CONFIG SET appendfsync always')).toBe('+OK');
  expect(await socketCommand(sock, 'SET gaxx-test-fsync 1')).toBe('+OK');
  const pid = redisPid();
  process.kill(pid, 'SIGKILL');
  await vi.waitFor(() => expect(alive(pid)).toBe(false), { timeout: 10_000, interval: 50 });
}

beforeAll(async () => {
  home = await initHome('gxrr-');
  const certs = await homeAgentCerts(home);
  agents = await Promise.all([0, 1].map(() => startAgent({ certsDir: certs })));
});

afterAll(async () => {
  await stopAllGaxx();
  await stopAllAgents();
  try {
    const pid = redisPid();
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  } catch {
    // never started, or already gone
  }
  for (const dir of [home, ...dirs]) rmSync(dir, { recursive: true, force: true });
});

describe('gaxx run when its embedded Redis is killed and comes back', () => {
  it('a --tasks run goes on enqueueing once Redis is back: every record runs, exit 0, the run index says done', async () => {
    const marks = markerDir('gxrr-marks');
    dirs.push(marks);
    const list = join(marks, 'tasks.txt');
    writeFileSync(list, 'a\nb\nc\nd\ne\nf\n');
    // The first window's tasks hold until Redis has been gone longer than a producer's quick retries.
    const gate = taskGate();
    const run = spawnGaxx(
      [
        'run',
        '--json',
        '--tasks',
        list,
        '--concurrency',
        '2',
        '--agent',
        agents.map((a) => a.address).join(','),
        '--',
        'sh',
        '-c',
        `mktemp ${marks}/started.XXXXXX >/dev/null; ${gate.wait}`,
      ],
      { home },
    );
    const started = (): number => readdirSync(marks).filter((f) => f.startsWith('started.')).length;
    await vi.waitFor(() => expect(started()).toBe(2), { timeout: 60_000, interval: 100 });
    await killRedis();
    await run.line('stderr', (l) => /Redis unreachable for \d+s/.test(l));
    gate.open();
    // Any gaxx command starts the embedded server again (from its AOF).
    const list1 = await runGaxx(['runs', '--json'], { home });
    expect(list1.code, list1.stderr).toBe(0);
    const r = await run.done;
    gate.remove();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/cancelled/);
    const lines = jsonLines(r.stdout);
    const runId = lines[0]?.runId as string;
    const tasks = lines.filter((x) => x.type === 'task');
    expect(tasks.map((t) => t.taskId).sort()).toEqual(['1', '2', '3', '4', '5', '6']);
    for (const t of tasks) expect(t).toMatchObject({ outcome: 'succeeded' });
    expect(lines.at(-1)).toMatchObject({ type: 'summary', total: 6, succeeded: 6 });
    expect(started()).toBe(6);
    const listed = await runGaxx(['runs', '--json'], { home });
    expect((JSON.parse(listed.stdout) as Array<Record<string, unknown>>).find((x) => x.runId === runId)).toMatchObject({
      state: 'done',
      total: 6,
      enqueued: 6,
      counts: { succeeded: 6 },
    });
  }, 240_000);

  it('a Ctrl-C after Redis came back reaches a daemon: its running tasks are stopped and report cancelled', async () => {
    const daemon = spawnGaxx(['scheduler', '--metrics-listen', '127.0.0.1:0'], { home });
    const gate = taskGate();
    try {
      await daemon.line('stderr', (l) => l.includes('"scheduler started"'));
      const marks = markerDir('gxrr-marks');
      dirs.push(marks);
      const started = (): number => readdirSync(marks).filter((f) => f.startsWith('started.')).length;
      const run = spawnGaxx(
        ['run', '--json', '--agent', agents.map((a) => a.address).join(','), '--', 'sh', '-c', `mktemp ${marks}/started.XXXXXX >/dev/null; ${gate.wait}`],
        { home },
      );
      await vi.waitFor(() => expect(started()).toBe(2), { timeout: 60_000, interval: 100 });
      await killRedis();
      await run.line('stderr', (l) => /Redis unreachable for \d+s/.test(l));
      const list = await runGaxx(['runs', '--json'], { home });
      expect(list.code, list.stderr).toBe(0);
      await run.line('stderr', (l) => /Redis is back after \d+s/.test(l));
      run.kill('SIGINT');
      const r = await run.done;
      expect(r.code, r.stderr).toBe(exitCodeFor('CANCELLED'));
      // The daemon saw the cancel flag and stopped them: the agents' own end, not "unknown".
      const tasks = jsonLines(r.stdout).filter((x) => x.type === 'task');
      expect(tasks.map((t) => t.outcome)).toEqual(['cancelled', 'cancelled']);
      for (const t of tasks) expect(t).toMatchObject({ reason: 'cancelled' });
    } finally {
      gate.open();
      gate.remove();
      daemon.kill('SIGTERM');
      await daemon.done;
    }
  }, 240_000);
});
