// Sandboxes started ahead of their tasks (--warm-sandboxes), on the built agent (run `npm run
// build` first) as in production (non-root, bwrap): a task that finds one ready runs in it with
// its own scratch dir, its exact env, argv, stdin, exit status and signal; a task with a work dir
// of its own starts cold; warm dirs left by a killed agent are removed; and the warm sandboxes go
// with the agent.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { startAgent, type AgentProcess } from '../helpers/agent.js';
import { useAgentWorld } from '../helpers/agent-world.js';
import { execCollect, execStarted, exitOf, rawAgentClient, type ExecResult, type RawClients } from '../helpers/grpc.js';
import { taskGate, type TaskGate } from '../helpers/gate.js';
import { metricValue, scrapeMetrics } from '../helpers/metrics.js';
import { allPids } from '../helpers/procs.js';

const { spawnMethod } = (await import(resolve(__dirname, '../../dist/agent/exec/task-spawn.js'))) as typeof import('../../agent/exec/task-spawn.js');
/** Whether this build's native spawn loads here (it does wherever the build had a C compiler, as CI's has). */
const nativeSpawn = spawnMethod().native;

const w = useAgentWorld('gaxx-warm');
let n = 0;

const tasksDir = (a: AgentProcess) => join(a.dataDir, 'tasks');

/**
 * Warm dirs whose sandbox is set up: its dash runs there, waiting for a task. Inside, every
 * sandboxed scratch dir is named alike (`<tasks>/+task`), so a dash is matched to a warm dir by
 * the directory itself (the inode its cwd link leads to), not by the name it sees.
 */
function readyWarmDirs(a: AgentProcess): string[] {
  const root = tasksDir(a);
  const byIno = new Map<number, string>();
  for (const d of warmDirs(a)) {
    try {
      byIno.set(statSync(join(root, d)).ino, join(root, d));
    } catch {
      // taken meanwhile
    }
  }
  const dirs: string[] = [];
  for (const pid of allPids()) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'dash') continue;
      const dir = byIno.get(statSync(`/proc/${pid}/cwd`).ino);
      if (dir) dirs.push(dir);
    } catch {
      // gone meanwhile
    }
  }
  return dirs;
}

/** The agent's warm dirs, set up or not. */
const warmDirs = (a: AgentProcess) => (existsSync(tasksDir(a)) ? readdirSync(tasksDir(a)).filter((d) => d.startsWith('+warm-')) : []);

/** A ready warm dir; an agent fills its pool a moment after its start and again after tasks: one is run first when none is there (or `prime`). */
async function oneReady(a: AgentProcess, c: RawClients, prime = warmDirs(a).length === 0): Promise<string> {
  if (prime) expect(exitOf(await execCollect(c.agent, { taskId: `prime-${++n}`, argv: ['/bin/true'] }))?.code).toBe(0);
  return vi.waitFor(
    () => {
      const d = readyWarmDirs(a)[0];
      if (!d) throw new Error('no warm sandbox ready yet');
      return d;
    },
    { timeout: 15_000, interval: 20 },
  );
}

/**
 * Runs `attempt` (which asserts what must hold warm or cold) once the pool is full, until one
 * attempt started warm (the metric says so); returns the inodes of the dirs ready before it. On a
 * loaded machine the launcher may not have read a ready sandbox's signal when the task comes.
 */
async function untilWarm(a: AgentProcess, c: RawClients, attempt: (i: number) => Promise<string>): Promise<{ work: string; ready: Set<number> }> {
  for (let i = 0; i < 10; i++) {
    await oneReady(a, c);
    // The whole pool set up: a sandbox that got ready after the dirs are read could be the one taken.
    await fullPool(a);
    const ready = new Set(readyWarmDirs(a).map((d) => statSync(d).ino));
    const before = await warmStarts(a);
    const work = await attempt(i);
    if ((await warmStarts(a)) === before + 1) return { work, ready };
  }
  throw new Error('no task found a warm sandbox ready in 10 tries');
}

/** Waits until the agent's pool (2 sandboxes by default) is full and set up. */
async function fullPool(a: AgentProcess, count = 2): Promise<void> {
  await vi.waitFor(
    () => {
      const ready = readyWarmDirs(a).length;
      if (ready !== count) throw new Error(`${ready} of ${count} warm sandboxes ready`);
    },
    { timeout: 15_000, interval: 20 },
  );
}

/** Starts a task that waits at a gate, on a full pool, until one starts warm: its call's result, whether it ended, its gate. */
async function untilWarmRunning(a: AgentProcess, c: RawClients): Promise<{ result: Promise<ExecResult>; ended: () => boolean; gate: TaskGate }> {
  for (let i = 0; i < 10; i++) {
    await oneReady(a, c);
    await fullPool(a);
    const before = await warmStarts(a);
    const gate = taskGate();
    const run = await execStarted(c.agent, { taskId: `long-${++n}`, argv: ['/bin/sh', '-c', gate.wait] });
    let ended = false;
    void run.result.then(() => (ended = true));
    if ((await warmStarts(a)) === before + 1) return { result: run.result, ended: () => ended, gate };
    gate.open();
    await run.result;
    gate.remove();
  }
  throw new Error('no task found a warm sandbox ready in 10 tries');
}

/** The env a task printed between << and >> (`env -0`), sorted. */
function envOf(stdout: string): string[] {
  return stdout
    .slice(stdout.indexOf('<<') + 2, stdout.indexOf('>>'))
    .split('\0')
    .filter(Boolean)
    .sort();
}

/** An agent without a sandbox whose tasks get a CPU limit of 60 s, and its operator's client. */
async function startLimited(env: Record<string, string> = {}): Promise<{ agent: AgentProcess; c: RawClients }> {
  const agent = await startAgent({
    certsDir: w.pki.agent.dir,
    env,
    args: ['--unsafe-no-isolation', '--task-limits', '{"isolation":"rlimit","cpuSeconds":60}'],
  });
  return { agent, c: rawAgentClient(agent.address, w.pki.clients.operator.dir) };
}

/** Runs a task that prints its CPU limit, then the output of `more` (a shell command), then its env. */
function runLimited(c: RawClients, taskId: string, more = 'true'): Promise<ExecResult> {
  return execCollect(c.agent, { taskId, argv: ['/bin/sh', '-c', `ulimit -t; ${more}; printf "<<"; env -0; printf ">>"`], env: { ONE: '1' } });
}

/** runLimited's output, for a task in `work`: the limit, and exactly the base env, the task's own and its shell's PWD. */
function expectLimited(stdout: string, work: string): void {
  expect(stdout.split('\n')[0]).toBe('60');
  expect(envOf(stdout)).toEqual(['HOME=' + work, 'LANG=C.UTF-8', 'ONE=1', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'PWD=' + work]);
}

const warmStarts = async (a: AgentProcess) =>
  metricValue(await scrapeMetrics(a.metricsPort as number, w.pki.clients.operator.dir), 'gaxx_agent_warm_starts_total');

describe('a task that finds a sandbox ready', () => {
  it('runs in it, in its own scratch dir, with exactly its env, argv and stdin', async () => {
    const argv = [
      '/bin/sh',
      '-c',
      'pwd; printf "<<"; env -0; printf ">>\\n"; printf "[%s]\\n" "$@"; cat; touch mine && echo wrote',
      'sh',
      "it's",
      'two\nlines',
      '$HOME',
      '*',
    ];
    const { work, ready } = await untilWarm(w.agent, w.op, async () => {
      const taskId = `warm-${++n}`;
      const r = await execCollect(w.op.agent, { taskId, argv, env: { QUOTED: 'a\'b"c$d`e`', MULTI: 'x\ny' }, stdin: Buffer.from('from stdin\n') });
      expect(exitOf(r)?.code).toBe(0);
      const dir = join(tasksDir(w.agent), taskId);
      // Inside, every sandboxed scratch dir has one name; on the host it is the task's.
      const seen = join(tasksDir(w.agent), '+task');
      expect(r.stdout.split('\n')[0]).toBe(seen);
      // The task's shell adds PWD; nothing else but what the task was given and the base env.
      expect(envOf(r.stdout)).toEqual([
        'HOME=' + seen,
        'LANG=C.UTF-8',
        'MULTI=x\ny',
        'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        'PWD=' + seen,
        `QUOTED=a'b"c$d\`e\``,
      ]);
      expect(r.stdout).toContain("[it's]\n[two\nlines]\n[$HOME]\n[*]\nfrom stdin\nwrote\n");
      expect(readdirSync(dir)).toEqual(['mine']);
      return dir;
    });
    // One of the dirs sandboxes were started with, renamed to the task's.
    expect(ready.has(statSync(work).ino)).toBe(true);
  });

  it('reports its exit code and the signal that ended it', async () => {
    await oneReady(w.agent, w.op);
    const coded = await execCollect(w.op.agent, { taskId: `warm-${++n}`, argv: ['/bin/sh', '-c', 'exit 7'] });
    expect(exitOf(coded)).toMatchObject({ code: 7, signal: '' });
    await oneReady(w.agent, w.op);
    const killed = await execCollect(w.op.agent, { taskId: `warm-${++n}`, argv: ['/bin/sh', '-c', 'kill -TERM $$'] });
    expect(exitOf(killed)?.signal).toBe('SIGTERM');
  });

  it('has the sandbox it took replaced while it still runs', async () => {
    const run = await untilWarmRunning(w.agent, w.op);
    try {
      // The pool (2 by default) is full again beside the running task, not only once it ends.
      await fullPool(w.agent);
      expect(run.ended()).toBe(false);
    } finally {
      run.gate.open();
    }
    expect(exitOf(await run.result)?.code).toBe(0);
    run.gate.remove();
  });

  it('that came alone has its sandbox replaced at a quiet moment, and the pool is full again', async () => {
    const run = await untilWarmRunning(w.agent, w.op);
    run.gate.open();
    expect(exitOf(await run.result)?.code).toBe(0);
    run.gate.remove();
    // No task follows: the refill waits for a quiet moment (REFILL_IDLE_MS), then fills the pool.
    await fullPool(w.agent);
    expect(warmDirs(w.agent)).toHaveLength(2);
  });

  it('reports a missing command as a spawn error, as a cold start does', async () => {
    await oneReady(w.agent, w.op);
    const r = await execCollect(w.op.agent, { taskId: `warm-${++n}`, argv: ['no-such-command-here'] });
    expect(exitOf(r)?.code).toBe(127);
    expect(exitOf(r)?.error).toMatch(/ENOENT/);
  });
});

describe('a task with a work dir of its own', () => {
  it('starts cold and runs there', async () => {
    await oneReady(w.agent, w.op);
    const before = await warmStarts(w.agent);
    mkdirSync(join(w.agent.dataDir, 'mine'), { recursive: true });
    const r = await execCollect(w.op.agent, { taskId: `cold-${++n}`, argv: ['/bin/pwd'], workDir: 'mine' });
    expect(r.stdout).toBe(`${join(w.agent.dataDir, 'mine')}\n`);
    expect(await warmStarts(w.agent)).toBe(before);
  });
});

describe('warm sandboxes and the agent', () => {
  it("are started a moment after the agent's start, with no task run; a task then takes one", async () => {
    const a = await startAgent({ certsDir: w.pki.agent.dir });
    const c = rawAgentClient(a.address, w.pki.clients.operator.dir);
    try {
      // The start does not wait for them, and no task has run: the pool is the agent's own doing.
      await fullPool(a);
      expect(await warmStarts(a)).toBe(0);
      const { work } = await untilWarm(a, c, async (i) => {
        const r = await execCollect(c.agent, { taskId: `after-start-${i}`, argv: ['/bin/sh', '-c', 'pwd'] });
        expect(exitOf(r)?.code).toBe(0);
        return r.stdout.trim();
      });
      expect(work).toBe(join(tasksDir(a), '+task'));
    } finally {
      c.close();
      await a.stop();
    }
  });

  it('are removed with their dirs when the agent is killed, and stale dirs are swept at the next start', async () => {
    const certsDir = w.pki.agent.dir;
    const victim = await startAgent({ certsDir, metrics: false });
    const vc = rawAgentClient(victim.address, w.pki.clients.operator.dir);
    const warm = await oneReady(victim, vc, false);
    vc.close();
    victim.kill('SIGKILL');
    await victim.exited;
    await vi.waitFor(() => expect(readyWarmDirs(victim)).toEqual([]), { timeout: 15_000, interval: 50 });
    // A launcher killed with the agent could not remove them: the next start does.
    mkdirSync(join(tasksDir(victim), '+warm-stale'), { recursive: true });
    writeFileSync(join(tasksDir(victim), '+warm-stale', 'left'), '');
    const again = await startAgent({ certsDir, metrics: false, dataDir: victim.dataDir });
    const ac = rawAgentClient(again.address, w.pki.clients.operator.dir);
    // Its dirs are stale ones, not a pool: a first task fills it.
    await oneReady(again, ac, true);
    ac.close();
    // The sweep removes them off the launcher's event loop (removeTree): done once they are gone.
    await vi.waitFor(
      () => {
        const names = readdirSync(tasksDir(again));
        expect(names).not.toContain('+warm-stale');
        expect(names).not.toContain(warm.slice(warm.lastIndexOf('/') + 1));
      },
      { timeout: 15_000, interval: 50 },
    );
    await again.stop();
  });

  it('without a sandbox (--unsafe-no-isolation), through the native spawn, start no task ahead: each starts cold with its limits', async () => {
    // The agent's launcher loads the same build's module the way this does.
    expect(nativeSpawn).toBe(true);
    const { agent: unsafe, c } = await startLimited();
    for (let i = 0; i < 3; i++) {
      const taskId = `cold-${i}`;
      // A pool would have been filled as the task before ended, before its result came back.
      const r = await runLimited(c, taskId, 'ls -a ..');
      expectLimited(r.stdout, join(tasksDir(unsafe), taskId));
      expect(r.stdout.split('\n').filter((l) => l.startsWith('+warm-'))).toEqual([]);
    }
    expect(warmDirs(unsafe)).toEqual([]);
    expect(await warmStarts(unsafe)).toBe(0);
    c.close();
    await unsafe.stop();
  });

  it('without a sandbox, where tasks fork (GAXX_SPAWN=node), keep the limits started ahead the same way', async () => {
    const { agent: unsafe, c } = await startLimited({ GAXX_SPAWN: 'node' });
    await untilWarm(unsafe, c, async (i) => {
      const taskId = `unsafe-${i}`;
      const work = join(tasksDir(unsafe), taskId);
      expectLimited((await runLimited(c, taskId)).stdout, work);
      return work;
    });
    c.close();
    await unsafe.stop();
  });

  it('--warm-sandboxes 0 keeps none; tasks still run', async () => {
    const none = await startAgent({ certsDir: w.pki.agent.dir, args: ['--warm-sandboxes', '0'] });
    const c = rawAgentClient(none.address, w.pki.clients.operator.dir);
    const r = await execCollect(c.agent, { taskId: 'nowarm-1', argv: ['/bin/echo', 'cold'] });
    expect(r.stdout).toBe('cold\n');
    expect(readdirSync(tasksDir(none)).filter((d) => d.startsWith('+warm-'))).toEqual([]);
    expect(await warmStarts(none)).toBe(0);
    c.close();
    await none.stop();
  });
});
