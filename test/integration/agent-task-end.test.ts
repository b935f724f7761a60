// A task ends when its process does (its sandbox's bwrap, or the task itself without one), not when
// its output pipes close, on the built agent (run `npm run build` first) as in production
// (non-root, bwrap). Tasks share the network namespace, hence abstract unix sockets: a task can
// hand its stdout and stderr to another task and exit. Its end still comes at once, with its own
// output and exit code (not its timeout), and what the other task writes into the descriptors
// afterwards is not its output (the writes fail with EPIPE). Also: what a task leaves running
// with its stdout open dies with its sandbox, and the task ends when its process does.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startAgent, type AgentProcess } from '../helpers/agent.js';
import { useAgentWorld } from '../helpers/agent-world.js';
import { execCollect, exitOf, rawAgentClient, type ExecResult, type RawClients } from '../helpers/grpc.js';
import { taskGate } from '../helpers/gate.js';
import { metricValue, scrapeMetrics } from '../helpers/metrics.js';
import { eventually } from '../helpers/poll.js';
import { awaitPidsWith, noneLeft, pidsWith, sleepMarker } from '../helpers/procs.js';
import type { ExecRequest } from '../../proto/index.js';

const w = useAgentWorld('gaxx-task-end', () => ({ args: ['--capacity', '4'] }));
let n = 0;

/**
 * Task B: listens on an abstract socket, takes the descriptors it is sent, waits at the gate,
 * then writes into the first one until a write fails: EPIPE, or every write went through.
 */
const HOLDER = `
import os, socket, sys, time
name, gate = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\\0" + name)
s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
_, fds, _, _ = socket.recv_fds(c, 16, 4)
print("got", len(fds), flush=True)
for _ in range(1200):
    if os.path.exists(gate): break
    time.sleep(0.05)
for _ in range(20):
    try:
        os.write(fds[0], b"WRITTEN-BY-B\\n")
    except BrokenPipeError:
        print("EPIPE", flush=True)
        break
    time.sleep(0.05)
else:
    print("WRITES-ACCEPTED", flush=True)
`;

/** Task A: writes a line to stdout and one to stderr, sends both to B and exits 0. */
const SENDER = `
import socket, sys
print("A-OUT", flush=True)
print("A-ERR", file=sys.stderr, flush=True)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect("\\0" + sys.argv[1])
socket.send_fds(c, [b"x"], [1, 2])
`;

interface Passed {
  sender: ExecResult;
  /** Whether B still ran (holding A's descriptors, waiting at the gate) when A's result was complete. */
  holderRunning: boolean;
  holder: ExecResult;
}

/** A work dir of its own under the agent's data dir: a task there starts cold. */
function ownDir(a: AgentProcess): string {
  const name = `own-${++n}`;
  mkdirSync(join(a.dataDir, name));
  return name;
}

/** B holds A's stdout and stderr; A's result is awaited while B holds them, then B writes. */
async function passFds(c: RawClients, opts: { sender?: Partial<ExecRequest>; holder?: Partial<ExecRequest> } = {}): Promise<Passed> {
  const id = ++n;
  const name = `gaxx-test-${randomBytes(8).toString('hex')}`;
  const gate = taskGate(60);
  try {
    let listening = false;
    let holderDone = false;
    const holder = execCollect(
      c.agent,
      { taskId: `holder-${id}`, argv: ['python3', '-c', HOLDER, name, gate.path], timeoutMs: 90_000, ...opts.holder },
      (ev) => {
        if (ev.stdout?.toString().includes('listening')) listening = true;
      },
      120_000,
    );
    void holder.then(() => (holderDone = true));
    expect(await eventually(() => listening || holderDone, 30_000, 20)).toBe(true);
    expect(holderDone).toBe(false);
    // Before the change, A ended only once B let go of its pipes: after the gate's bound, far past
    // A's timeout and this call's deadline.
    const a = await execCollect(
      c.agent,
      { taskId: `sender-${id}`, argv: ['python3', '-c', SENDER, name], timeoutMs: 20_000, ...opts.sender },
      undefined,
      45_000,
    );
    const holderRunning = !holderDone;
    gate.open();
    return { sender: a, holderRunning, holder: await holder };
  } finally {
    gate.remove();
  }
}

function expectCut(r: Passed): void {
  expect(r.sender.error).toBeUndefined();
  expect(exitOf(r.sender)).toMatchObject({ code: 0, signal: '', reason: '', truncated: false });
  expect(r.sender.stdout).toBe('A-OUT\n');
  expect(r.sender.stderr).toBe('A-ERR\n');
  expect(r.holderRunning).toBe(true);
  // B got both descriptors, and its writes into them failed: A's read ends were closed.
  expect(r.holder.stdout).toBe('listening\ngot 2\nEPIPE\n');
  expect(exitOf(r.holder)).toMatchObject({ code: 0, reason: '' });
}

async function serving(c: RawClients): Promise<boolean> {
  const r = await execCollect(c.agent, { taskId: `alive-${++n}`, argv: ['/bin/echo', 'alive'] });
  return exitOf(r)?.code === 0 && r.stdout === 'alive\n';
}

const warmStarts = async (a: AgentProcess) =>
  metricValue(await scrapeMetrics(a.metricsPort as number, w.pki.clients.operator.dir), 'gaxx_agent_warm_starts_total');

describe('a task that passes its stdout and stderr to another task and exits', () => {
  it('ends at once with its own output and exit code, started cold (its own work dir)', async () => {
    const r = await passFds(w.op, { sender: { workDir: ownDir(w.agent) } });
    expectCut(r);
    expect(await serving(w.op)).toBe(true);
  });

  it('ends at once with its own output and exit code, in a sandbox started ahead', async () => {
    // The pool is filled a moment after the agent's start and after tasks; a task may still find
    // none ready on a loaded machine (it then starts cold): tried until one started warm.
    let warm = false;
    for (let i = 0; i < 5 && !warm; i++) {
      const before = await warmStarts(w.agent);
      // The holder starts cold (a work dir of its own): a warm start is the sender's.
      const r = await passFds(w.op, { holder: { workDir: ownDir(w.agent) } });
      expectCut(r);
      warm = (await warmStarts(w.agent)) === before + 1;
    }
    expect(warm).toBe(true);
    expect(await serving(w.op)).toBe(true);
  });

  for (const [label, env] of [
    ['through the native spawn', {}],
    ['where tasks fork (GAXX_SPAWN=node)', { GAXX_SPAWN: 'node' }],
  ] as const) {
    it(`ends at once without a sandbox (--unsafe-no-isolation), ${label}`, async () => {
      const a = await startAgent({ certsDir: w.pki.agent.dir, env, args: ['--unsafe-no-isolation', '--capacity', '4'] });
      const c = rawAgentClient(a.address, w.pki.clients.operator.dir);
      try {
        expectCut(await passFds(c));
        expect(await serving(c)).toBe(true);
      } finally {
        c.close();
        await a.stop();
      }
    });
  }
});

/**
 * Leaves `sleep m` in the task's process group and `sleep m2` in a session of its own (once it
 * is there), both holding the task's stdout, and prints hi.
 */
const leaveRunning = (m: string, m2: string) =>
  `sleep ${m} & setsid sh -c 'touch own-session; exec sleep ${m2}' & i=0; while [ ! -e own-session ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done; echo hi`;

describe('a task that leaves a process running with its stdout open', () => {
  it('ends when its own process does; in the sandbox, what it left dies with it', async () => {
    const m = sleepMarker();
    const m2 = sleepMarker();
    // One in the task's group, one in a session of its own: neither outlives the namespace.
    const r = await execCollect(w.op.agent, { taskId: `bg-${++n}`, argv: ['sh', '-c', leaveRunning(m, m2)], timeoutMs: 60_000 }, undefined, 30_000);
    expect(r.error).toBeUndefined();
    expect(exitOf(r)).toMatchObject({ code: 0, signal: '', reason: '' });
    expect(r.stdout).toBe('hi\n');
    expect(await noneLeft(m)).toBe(true);
    expect(await noneLeft(m2)).toBe(true);
  });

  it('ends when its own process does without a sandbox too: its group is killed, what left the group is cut off', async () => {
    const a = await startAgent({ certsDir: w.pki.agent.dir, args: ['--unsafe-no-isolation'] });
    const c = rawAgentClient(a.address, w.pki.clients.operator.dir);
    const m = sleepMarker();
    const m2 = sleepMarker();
    try {
      // Before the change, the task ended only once the setsid'd sleep closed its stdout: minutes.
      const r = await execCollect(c.agent, { taskId: `bg-unsafe-${++n}`, argv: ['sh', '-c', leaveRunning(m, m2)], timeoutMs: 60_000 }, undefined, 30_000);
      expect(r.error).toBeUndefined();
      expect(exitOf(r)).toMatchObject({ code: 0, signal: '', reason: '' });
      expect(r.stdout).toBe('hi\n');
      expect(await noneLeft(m)).toBe(true);
      // Unsandboxed, a process in a session of its own outlives the task (no namespace ends it);
      // it holds a pipe nobody reads any more (it touched its file before it exec'd sleep: waited for).
      expect(await awaitPidsWith(m2, 1, 10_000)).toBe(1);
      expect(await serving(c)).toBe(true);
    } finally {
      for (const pid of pidsWith(m2, true)) process.kill(pid, 'SIGKILL');
      c.close();
      await a.stop();
    }
  });
});
