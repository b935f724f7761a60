// Per-task limits on real children through the real /usr/bin/prlimit.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  classifyExit,
  commandExists,
  detectIsolation,
  scopeArgv,
  TailBuffer,
  taskRlimits,
  TaskLimitsSchema,
  type Isolation,
  type TaskLimits,
} from '../../agent/exec/limits.js';
import { prlimitArgv } from '../../agent/exec/task-spawn.js';

const rlimit: Isolation = { kind: 'rlimit', prlimit: '/usr/bin/prlimit', detail: 'test' };
const NOBODY = 65534;

/**
 * Runs argv under limits in its own process group, with prlimit in front as the launcher's
 * forking spawn does (task-spawn.ts); kills the group when the leader ends.
 */
function runLimited(argv: string[], limits: TaskLimits, asNobody = false): Promise<{ code: number | null; signal: string | null; stderr: string; ms: number }> {
  const rl = taskRlimits(limits, rlimit);
  const [file, ...args] = rl ? [...prlimitArgv(rl), ...argv] : argv;
  const t0 = Date.now();
  const child = spawn(file as string, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'], ...(asNobody ? { uid: NOBODY, gid: NOBODY } : {}) });
  const tail = new TailBuffer();
  child.stderr.on('data', (c: Buffer) => tail.push(c));
  const guard = setTimeout(() => killGroup(child.pid), 20_000);
  return new Promise((resolve) => {
    child.on('exit', () => killGroup(child.pid));
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stderr: tail.text(), ms: Date.now() - t0 });
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

describe('task limits', () => {
  it('builds the rlimits and their prlimit argv, and runs argv unchanged without isolation', () => {
    const l = TaskLimitsSchema.parse({ cpuSeconds: 5, addressSpaceBytes: 1000, processes: 7 });
    const rl = taskRlimits(l, rlimit);
    expect(rl).toEqual({ prlimit: '/usr/bin/prlimit', cpu: [5, 7], as: 1000, nproc: 7 });
    expect([...prlimitArgv(rl as NonNullable<typeof rl>), 'echo', 'hi']).toEqual([
      '/usr/bin/prlimit',
      '--cpu=5:7',
      '--as=1000',
      '--nproc=7',
      '--',
      'echo',
      'hi',
    ]);
    expect(scopeArgv(['echo', 'hi'], l, rlimit)).toEqual(['echo', 'hi']);
    const none: Isolation = { kind: 'none', detail: '' };
    expect(taskRlimits(l, none)).toBeUndefined();
    expect(scopeArgv(['echo'], l, none)).toEqual(['echo']);
    const scope: Isolation = { kind: 'systemd-scope', prlimit: '/p', systemdRun: '/s', detail: '' };
    const scoped = scopeArgv(['echo'], l, scope, 'gaxx-task-t1');
    expect(scoped.slice(0, 4)).toEqual(['/s', '--user', '--scope', '--quiet']);
    expect(scoped).toContain('TasksMax=7');
    expect(scoped).toContain('MemoryMax=1000');
    expect(scoped.slice(-2)).toEqual(['--', 'echo']);
    // In a scope the cgroup caps memory and tasks: the rlimits are the CPU time alone.
    expect(prlimitArgv(taskRlimits(l, scope) as NonNullable<ReturnType<typeof taskRlimits>>)).toEqual(['/p', '--cpu=5:7', '--']);
  });

  it('detects a usable isolation on this host and says which', async () => {
    const iso = await detectIsolation({ prefer: 'auto' });
    expect(['systemd-scope', 'rlimit']).toContain(iso.kind);
    expect(iso.detail.length).toBeGreaterThan(0);
    expect((await detectIsolation({ prefer: 'auto', prlimitPath: '/nonexistent/prlimit' })).kind).toBe('none');
  });

  it('stops a busy loop at its CPU limit with SIGXCPU -> cpu_limit', async () => {
    const limits = TaskLimitsSchema.parse({ cpuSeconds: 1 });
    const r = await runLimited(['/bin/sh', '-c', 'while :; do :; done'], limits);
    expect(r.signal).toBe('SIGXCPU');
    expect(classifyExit({ code: r.code, signal: r.signal, stderrTail: r.stderr }, limits, rlimit)).toBe('cpu_limit');
  });

  it('stops a memory hog at its address-space limit -> memory_limit', async () => {
    const limits = TaskLimitsSchema.parse({ addressSpaceBytes: 256 * 1024 ** 2 });
    const r = await runLimited(['/usr/bin/perl', '-e', '$x = "a" x 1e6; while (1) { $x .= $x }'], limits);
    expect(r.code).not.toBe(0);
    expect(classifyExit({ code: r.code, signal: r.signal, stderrTail: r.stderr }, limits, rlimit)).toBe('memory_limit');
  });

  it('stops a fork bomb at its process limit -> process_limit', async () => {
    const limits = TaskLimitsSchema.parse({ processes: 24 });
    const r = await runLimited(['/bin/sh', '-c', 'while :; do sleep 5 & done'], limits, true);
    expect(r.code).not.toBe(0);
    expect(classifyExit({ code: r.code, signal: r.signal, stderrTail: r.stderr, agentReason: 'timeout' }, limits, rlimit)).toBe('process_limit');
  });

  it('reports no limit for an ordinary exit, and keeps the agent reason', async () => {
    const limits = TaskLimitsSchema.parse({});
    const r = await runLimited(['/bin/sh', '-c', 'echo hi >&2; exit 3'], limits);
    expect(r.code).toBe(3);
    expect(classifyExit({ code: r.code, signal: r.signal, stderrTail: r.stderr }, limits, rlimit)).toBe('');
    expect(classifyExit({ code: null, signal: 'SIGKILL', stderrTail: '', agentReason: 'timeout' }, limits, rlimit)).toBe('timeout');
    expect(classifyExit({ code: null, signal: 'SIGKILL', stderrTail: 'Cannot fork', agentReason: 'cancelled' }, limits, rlimit)).toBe('cancelled');
    expect(classifyExit({ code: 1, signal: null, stderrTail: 'out of memory' }, limits, { kind: 'none', detail: '' })).toBe('');
  });

  it('tells whether a command exists, as spawn would find it', () => {
    expect(commandExists('sh', '/usr/bin:/bin', '/')).toBe(true);
    expect(commandExists('/bin/sh', '', '/')).toBe(true);
    expect(commandExists('no-such-command-gaxx', '/usr/bin:/bin', '/')).toBe(false);
    expect(commandExists('bin/sh', '', '/')).toBe(true);
    expect(commandExists('/etc', '', '/')).toBe(false);
  });

  it('keeps only the tail of stderr', () => {
    const t = new TailBuffer(8);
    t.push(Buffer.from('0123456789'));
    t.push(Buffer.from('ab'));
    expect(t.text()).toBe('456789ab');
  });
});
