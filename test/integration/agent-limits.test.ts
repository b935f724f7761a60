// Issue 3 per-task limits on the built agent (run `npm run build` first): a fork bomb, a memory
// hog, a busy loop and an endless printer are each stopped by their limit with the right Exit
// reason while the agent keeps serving; the audit log records each task without its env, and a
// secret passed in a task's env appears in no log.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { execCollect, exitOf, rawAgentClient, unary, type RawClients } from '../helpers/grpc.js';
import { makePki, type Pki } from '../helpers/pki.js';
import type { ExecRequest, InfoResponse__Output } from '../../proto/index.js';
import { SHM_BYTES } from '../../agent/exec/sandbox.js';

// RLIMIT_NPROC counts every process and thread of the agent user on the machine (other agents
// started as nobody by parallel test files, their task launchers): leave room for them.
const LIMITS = { cpuSeconds: 2, addressSpaceBytes: 256 * 1024 ** 2, processes: 256, isolation: 'rlimit' };
const CANARY = `gaxx-canary-${randomBytes(12).toString('hex')}`;

let dir: string;
let pki: Pki;
let agent: AgentProcess;
let client: RawClients;
let auditPath: string;
let n = 0;

function run(argv: string[], extra: Partial<ExecRequest> = {}) {
  return execCollect(client.agent, { taskId: `lim-${++n}`, argv, timeoutMs: 20_000, ...extra });
}

async function stillServing(): Promise<boolean> {
  const r = await unary<object, InfoResponse__Output>((req, md, opts, cb) => client.agent.Info(req, md, opts, cb), {});
  const e = exitOf(await run(['/bin/echo', 'alive']));
  return r.ok && e?.code === 0;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-limits-'));
  pki = await makePki(dir);
  agent = await startAgent({ certsDir: pki.agent.dir, env: { GAXX_AGENT_TASK_LIMITS: JSON.stringify(LIMITS) } });
  auditPath = agent.auditLog;
  client = rawAgentClient(agent.address, pki.clients.operator.dir);
});

afterAll(async () => {
  client?.close();
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe('per-task limits', () => {
  it('stops a fork bomb at its process limit', async () => {
    const e = exitOf(await run(['/bin/sh', '-c', 'while :; do sleep 5 & done']));
    expect(e?.reason).toBe('process_limit');
    expect(await stillServing()).toBe(true);
  });

  it('stops a memory hog at its address-space limit', async () => {
    const e = exitOf(await run(['/usr/bin/perl', '-e', '$x = "a" x 1e6; while (1) { $x .= $x }']));
    expect(e?.reason).toBe('memory_limit');
    expect(e?.code).not.toBe(0);
    expect(await stillServing()).toBe(true);
  });

  it('holds its private /tmp and /dev/shm (memory no rlimit counts) to bounds, and cannot write /dev', async () => {
    // An agent of its own: the test's tasks fill /tmp (the other agent's tasks run meanwhile).
    const own = await startAgent({ certsDir: pki.agent.dir, env: { GAXX_AGENT_TASK_LIMITS: JSON.stringify(LIMITS) } });
    const c = rawAgentClient(own.address, pki.clients.operator.dir);
    try {
      // 300 MiB into a /tmp of 256 MiB: the write stops where /tmp is full, not in the host's RAM.
      const script = 'dd if=/dev/zero of=/tmp/fill bs=1M count=300 2>&1; df -k /tmp | tail -1; rm -f /tmp/fill';
      const r = await execCollect(c.agent, { taskId: 'tmp-fill', argv: ['/bin/sh', '-c', script], timeoutMs: 20_000 });
      expect(r.stdout).toMatch(/No space left on device/);
      const sizeKb = Number(r.stdout.trim().split('\n').at(-1)?.split(/\s+/)[1]);
      expect(sizeKb).toBe((256 * 1024 ** 2) / 1024);
      // /dev/shm: 100 MiB into its 64 MiB (SHM_BYTES, under the memory limit); /dev itself holds nothing new.
      const dev = [
        'dd if=/dev/zero of=/dev/shm/fill bs=1M count=100 2>&1; df -k /dev/shm | tail -1; rm -f /dev/shm/fill',
        'echo x > /dev/fill && echo WROTE-DEV || echo DEV-REFUSED',
        'echo x > /dev/null && echo NULL-OK',
      ].join('; ');
      const d = await execCollect(c.agent, { taskId: 'shm-fill', argv: ['/bin/sh', '-c', dev], timeoutMs: 20_000 });
      expect(d.stdout).toMatch(/No space left on device/);
      const shmKb = Number(/^\S+\s+(\d+)\s.*\/dev\/shm$/m.exec(d.stdout)?.[1]);
      expect(shmKb).toBe(SHM_BYTES / 1024);
      expect(d.stdout).toMatch(/^DEV-REFUSED$/m);
      expect(d.stderr).toMatch(/Read-only file system/);
      expect(d.stdout).toMatch(/^NULL-OK$/m);
    } finally {
      c.close();
      await own.stop();
    }
  });

  it('stops a busy loop at its CPU limit', async () => {
    const e = exitOf(await run(['/bin/sh', '-c', 'while :; do :; done']));
    expect(e?.signal).toBe('SIGXCPU');
    expect(e?.reason).toBe('cpu_limit');
    expect(await stillServing()).toBe(true);
  });

  it('stops an endless printer at its output cap', async () => {
    const e = exitOf(await run(['/usr/bin/yes', 'spam'], { outputCapBytes: 256 * 1024 }));
    expect(e?.reason).toBe('output_cap');
    expect(e?.truncated).toBe(true);
    expect(await stillServing()).toBe(true);
  });

  it('still reports a missing command as a spawn error', async () => {
    const e = exitOf(await run(['no-such-command-gaxx']));
    expect(e?.code).toBe(127);
    expect(e?.error).not.toBe('');
  });

  it('audits every task with its reason, and no secret from its env reaches any log', async () => {
    const r = await run(['/bin/sh', '-c', 'test -n "$SECRET_VALUE" && echo ok'], { env: { SECRET_VALUE: CANARY } });
    expect(r.stdout.trim()).toBe('ok');
    const audit = readFileSync(auditPath, 'utf8');
    const events = audit
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const finished = events.filter((e) => e.event === 'exec_finished');
    for (const reason of ['process_limit', 'memory_limit', 'cpu_limit', 'output_cap']) expect(finished.map((e) => e.reason)).toContain(reason);
    const started = events.find((e) => e.event === 'exec_started' && e.argv0 === '/bin/sh');
    expect(started).toMatchObject({ identity: 'operator alice', peer: '127.0.0.1' });
    expect(String(started?.argvSha256)).toMatch(/^[0-9a-f]{64}$/);
    expect(audit).not.toContain(CANARY);
    expect(agent.stderr()).not.toContain(CANARY);
    expect(agent.stderr()).toContain('task isolation');
  });
});
