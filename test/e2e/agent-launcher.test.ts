// The bundled agent, installed as local agents and bootstrap install it (gaxx-agent.mjs with
// gaxx-launcher.mjs beside it), starts tasks from its launcher process: while a task runs, the
// agent's only child is the launcher and the task runs below it. Installing copies both files
// (and the launcher's spawn module when the build made it); the bootstrap payload carries them.
// An agent that runs tasks starts its launcher as it starts (the first task does not wait for a
// Node process to boot); one that refuses tasks starts none. With GAXX_SPAWN=node the launcher
// forks through child_process and prlimit instead, and tasks run the same. Descriptors the agent
// was started with (left open by a shell, a CI runner) reach neither the launcher nor a task.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa, loadCertDir, writeCertDir } from '../../certs/index.js';
import { loadAgentPayload } from '../../cli/bootstrap/payload.js';
import { agentBundlePath, LAUNCHER_BUNDLE_FILE, SPAWN_MODULE_FILE } from '../../cli/providers/agent-bundle.js';
import type { ExecEvent__Output } from '../../proto/index.js';
import { AgentClient, outcomeOf } from '../../scheduler/client/index.js';
import { agentMain, repoRoot, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { eventually } from '../helpers/poll.js';
import { allPids, fdsOn, statFields, withInherited } from '../helpers/procs.js';

let dir: string;
let agent: AgentProcess;
let client: AgentClient;
let certs: string;

/** pid -> [ppid, cmdline] of every process we can see. */
function processTable(): Map<number, [number, string]> {
  const t = new Map<number, [number, string]>();
  for (const name of allPids()) {
    try {
      const ppid = statFields(name)?.[1];
      if (ppid !== undefined) t.set(Number(name), [Number(ppid), readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ')]);
    } catch {
      // gone meanwhile
    }
  }
  return t;
}

function childrenOf(t: Map<number, [number, string]>, pid: number): number[] {
  return [...t].filter(([, [ppid]]) => ppid === pid).map(([p]) => p);
}

function descendantsOf(t: Map<number, [number, string]>, pid: number): number[] {
  const kids = childrenOf(t, pid);
  return [...kids, ...kids.flatMap((k) => descendantsOf(t, k))];
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-launcher-'));
  const { ca } = await FleetCa.init(join(dir, 'ca'));
  const op = await ca.issue({ identity: { role: 'operator', name: 'alice' } });
  writeCertDir(join(dir, 'operator'), { certPem: op.certPem, keyPem: op.keyPem, caPem: ca.certPem });
  const made = await ca.issue({ identity: { role: 'agent', fleet: 'adhoc', host: 'h1' }, hosts: ['127.0.0.1'] });
  certs = join(dir, 'agent-certs');
  mkdirSync(certs, { mode: 0o700 });
  writeCertDir(certs, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem });
  agent = await startAgent({ certsDir: certs });
  client = AgentClient.connect({ address: agent.address }, loadCertDir(join(dir, 'operator')));
});
afterAll(async () => {
  client?.close();
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe('the task launcher of the bundled agent', () => {
  it('is installed beside the agent and travels in the bootstrap payload', () => {
    const installed = readdirSync(dirname(agentMain()));
    expect(installed).toContain(LAUNCHER_BUNDLE_FILE);
    const payload = loadAgentPayload(agentBundlePath(join(repoRoot(), 'package.json'))).map((f) => basename(f.path));
    expect(payload).toEqual(expect.arrayContaining(['gaxx-agent.mjs', LAUNCHER_BUNDLE_FILE]));
    const built = existsSync(join(dirname(agentBundlePath(join(repoRoot(), 'package.json'))), SPAWN_MODULE_FILE));
    expect([installed.includes(SPAWN_MODULE_FILE), payload.includes(SPAWN_MODULE_FILE)]).toEqual([built, built]);
  });

  it('runs tasks the same when it forks through child_process (GAXX_SPAWN=node): limits, output, exit code', async () => {
    const forking = await startAgent({ certsDir: certs, env: { GAXX_SPAWN: 'node' } });
    const forkClient = AgentClient.connect({ address: forking.address }, loadCertDir(join(dir, 'operator')));
    try {
      const argv = ['sh', '-c', 'grep -E "^Max (cpu time|processes|address space)" /proc/self/limits; exit 3'];
      const [viaFork, viaDefault] = await Promise.all([forkClient.run({ taskId: 'fork-spawn', argv }), client.run({ taskId: 'default-spawn', argv })]);
      expect(viaFork.exit.code).toBe(3);
      expect(viaFork.stdout.toString()).toMatch(/^Max cpu time\s+3600\s+3602/m);
      expect(viaFork.stdout.toString()).toBe(viaDefault.stdout.toString());
      // The setting reached the launcher, which chose child_process on it.
      const launcher = childrenOf(processTable(), forking.pid)[0] as number;
      expect(readFileSync(`/proc/${launcher}/environ`, 'utf8').split('\0')).toContain('GAXX_SPAWN=node');
    } finally {
      forkClient.close();
      await forking.stop();
    }
  });

  it('is up before the first task on an agent that runs tasks, and never started on one that refuses them', async () => {
    const fresh = await startAgent({ certsDir: certs });
    const refusing = await startAgent({ certsDir: certs, args: ['--bwrap', '/nonexistent/bwrap'] });
    try {
      // Spawned before the agent says it listens; its command line is the launcher's once it exec'd.
      let kids: string[] = [];
      await eventually(
        () => {
          const t = processTable();
          kids = childrenOf(t, fresh.pid).map((k) => t.get(k)?.[1] ?? '');
          return kids.some((c) => c.includes(LAUNCHER_BUNDLE_FILE));
        },
        10_000,
        25,
      );
      expect(kids).toEqual([expect.stringContaining(LAUNCHER_BUNDLE_FILE)]);
      expect(childrenOf(processTable(), refusing.pid)).toEqual([]);
    } finally {
      await Promise.all([fresh.stop(), refusing.stop()]);
    }
  });

  it('passes no descriptor it was started with on to its launcher or a task', async () => {
    const leftOpen = join(dir, 'left-open-by-the-starter');
    writeFileSync(leftOpen, '');
    const fd = openSync(leftOpen, 'r');
    // As its fd 3 (Node marks fds 0-15 it starts with close-on-exec) and fd 40 (Node leaves it
    // inheritable: the one that would reach the launcher and the tasks).
    const leaky = await startAgent({
      certsDir: certs,
      inheritFds: [
        [3, fd],
        [40, fd],
      ],
    });
    closeSync(fd);
    const leakyClient = AgentClient.connect({ address: leaky.address }, loadCertDir(join(dir, 'operator')));
    try {
      // `; :` keeps sh from exec'ing ls: $$ is the task's own shell. Two tasks: one may start cold,
      // one in a sandbox started ahead (the pool fills a moment after the start, and after a task).
      const argv = ['sh', '-c', 'ls /proc/$$/fd; :'];
      const [first, next] = [await leakyClient.run({ taskId: 'own-fds-1', argv }), await leakyClient.run({ taskId: 'own-fds-2', argv })];
      for (const r of [first, next]) expect(r.stdout.toString().split(/\s+/).filter(Boolean).map(Number)).toEqual([0, 1, 2]);
      const launcher = childrenOf(processTable(), leaky.pid)[0] as number;
      // The agent closed fd 40; fd 3 (close-on-exec) reached no child.
      expect([fdsOn(leaky.pid, leftOpen), fdsOn(launcher, leftOpen)]).toEqual([[3], []]);
      // (With any the test runner itself was given that high up.)
      expect(leaky.stderr()).toMatch(/"inheritedFdsClosed":\[(\d+,)*40(,\d+)*\].*"msg":"agent listening"/);
    } finally {
      leakyClient.close();
      await leaky.stop();
    }
  });

  it('closes descriptors it was given without close-on-exec itself, when started with some', async () => {
    const leftOpen = join(dir, 'left-open-for-the-launcher');
    writeFileSync(leftOpen, '');
    const fd = openSync(leftOpen, 'r');
    // As its fd 40, which Node leaves inheritable (see above).
    const launcher = spawn(process.execPath, [join(dirname(agentMain()), LAUNCHER_BUNDLE_FILE)], {
      stdio: withInherited(['pipe', 'pipe', 'inherit'], [[40, fd]]),
    });
    closeSync(fd);
    try {
      expect(launcher.pid).toBeGreaterThan(0);
      // Closed as the launcher starts (its stdin stays open: it runs until the test ends it).
      expect(await eventually(() => fdsOn(launcher.pid as number, leftOpen).length === 0, 15_000, 20)).toBe(true);
      // Still running, with its own pipes (a process that died has no fds to look at).
      expect(readdirSync(`/proc/${launcher.pid}/fd`).map(Number)).toEqual(expect.arrayContaining([0, 1, 2]));
    } finally {
      const gone = new Promise((r) => launcher.once('exit', r));
      launcher.stdin?.end();
      await gone;
    }
  });

  it('starts the tasks: the agent’s only child is the launcher, the task runs below it', async () => {
    // The shell is running once its first line arrives (`; :` keeps it from exec'ing sleep).
    const events = client.exec({ taskId: 'launcher-tree', argv: ['sh', '-c', 'echo ready; sleep 300; :'] })[Symbol.asyncIterator]();
    for (let r = await events.next(); !r.done && !(r.value as ExecEvent__Output).stdout; r = await events.next());
    const t = processTable();
    const kids = childrenOf(t, agent.pid);
    expect(kids.map((k) => t.get(k)?.[1])).toEqual([expect.stringContaining(LAUNCHER_BUNDLE_FILE)]);
    const below = descendantsOf(t, kids[0] as number).map((p) => t.get(p)?.[1] ?? '');
    expect(below.some((c) => c.startsWith('sh -c echo ready'))).toBe(true);
    expect(await client.cancel('launcher-tree')).toBe(true);
    let last: ExecEvent__Output | undefined;
    for (let r = await events.next(); !r.done; r = await events.next()) last = r.value as ExecEvent__Output;
    expect(last?.exit?.reason).toBe('cancelled');
  });

  it('a task lost with its launcher (killed -9) ends as lost, its end unknown, not as a SIGKILL it got; the next task gets a new launcher', async () => {
    const events = client.exec({ taskId: 'launcher-lost', argv: ['sh', '-c', 'echo ready; sleep 300; :'] })[Symbol.asyncIterator]();
    for (let r = await events.next(); !r.done && !(r.value as ExecEvent__Output).stdout; r = await events.next());
    const launcher = childrenOf(processTable(), agent.pid)[0] as number;
    process.kill(launcher, 'SIGKILL');
    let last: ExecEvent__Output | undefined;
    for (let r = await events.next(); !r.done; r = await events.next()) last = r.value as ExecEvent__Output;
    expect(last?.exit).toMatchObject({
      reason: 'launcher_lost',
      error: expect.stringMatching(/task launcher exited \(SIGKILL\) while the task ran/) as string,
    });
    expect(outcomeOf(last?.exit as NonNullable<ExecEvent__Output['exit']>)).toBe('unknown');
    const after = await client.run({ taskId: 'after-launcher-lost', argv: ['true'] });
    expect(after.exit.code).toBe(0);
    expect(childrenOf(processTable(), agent.pid).filter((k) => k !== launcher)).toHaveLength(1);
  });
});
