// Task isolation on the built agent (run `npm run build` first), started as in production
// (non-root, token set), attacked through the public Exec API: a task cannot read or write the
// agent's secrets, see or signal the agent, or leave anything running after its end; env names
// that change how programs load are refused; a host that cannot sandbox refuses tasks unless
// the agent was started with --unsafe-no-isolation.
import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AGENT_GID, AGENT_UID, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { clientCredentials, execCollect, exitOf, rawAgentClient, unary, type ExecResult, type RawClients } from '../helpers/grpc.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { awaitPidsWith, noneLeft, sleepMarker } from '../helpers/procs.js';
import type { ExecRequest, InfoResponse__Output } from '../../proto/index.js';

const TOKEN = randomBytes(32).toString('base64url');
let dir: string;
let pki: Pki;
let agent: AgentProcess;
let op: RawClients;
let n = 0;

/** Operator clients that also present the agent's bearer token. */
function clientFor(a: AgentProcess): RawClients {
  const bearer = grpc.credentials.createFromMetadataGenerator((_p, cb) => {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${TOKEN}`);
    cb(null, md);
  });
  return rawAgentClient(a.address, pki.clients.operator.dir, {
    credentials: grpc.credentials.combineChannelCredentials(clientCredentials(pki.clients.operator.dir), bearer),
  });
}

const run = (script: string, extra: Partial<ExecRequest> = {}, onEvent?: Parameters<typeof execCollect>[2]) =>
  execCollect(op.agent, { taskId: `iso-${++n}`, argv: ['/bin/sh', '-c', script], timeoutMs: 20_000, ...extra }, onEvent);

async function serving(client = op): Promise<boolean> {
  const info = await unary<object, InfoResponse__Output>(client.agent.Info.bind(client.agent), {});
  const r = await execCollect(client.agent, { taskId: `alive-${++n}`, argv: ['/bin/echo', 'alive'] });
  return info.ok && exitOf(r)?.code === 0 && r.stdout === 'alive\n';
}

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-isolation-'));
  pki = await makePki(dir);
  agent = await startAgent({ certsDir: pki.agent.dir, env: { GAXX_AGENT_TOKEN: TOKEN } });
  op = clientFor(agent);
});
afterAll(async () => {
  op?.close();
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe('a task cannot reach the agent', () => {
  it("cannot read the agent's key, token, CA bundle, revocation list, audit log or environment", async () => {
    const certs = pki.agent.dir;
    const targets = [
      `${certs}/key.pem`,
      `${certs}/cert.pem`,
      `${certs}/ca.pem`,
      `${certs}/revoked.json`,
      agent.auditLog,
      `/proc/${agent.pid}/environ`,
      `/proc/${agent.pid}/mem`,
      `/proc/${agent.pid}/cmdline`,
    ];
    expect(targets.filter((t) => !t.startsWith('/proc')).every((t) => existsSync(t))).toBe(true);
    const script = `${targets.map((t) => `if head -c 1 '${t}' >/dev/null 2>&1; then echo "READ ${t}"; else echo "DENIED ${t}"; fi`).join('; ')}
      cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; ls /proc | grep -c '^[0-9]'`;
    const r = await run(script);
    expect(exitOf(r)?.code).toBe(0);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('DENIED '))).toHaveLength(targets.length);
    expect(r.stdout).not.toContain('READ ');
    expect(r.stdout).not.toContain(TOKEN);
    expect(r.stdout).not.toContain('PRIVATE KEY');
    expect(await serving()).toBe(true);
  });

  it('cannot write the key, CA bundle, revocation list, audit log or cert dir', async () => {
    const certs = pki.agent.dir;
    const files = ['key.pem', 'cert.pem', 'ca.pem', 'revoked.json'].map((f) => join(certs, f));
    const before = files.map(sha);
    const listing = readdirSync(certs).sort();
    const auditBefore = readFileSync(agent.auditLog, 'utf8');
    const writes = [
      ...files.map((f) => `echo x >> '${f}'`),
      `: > '${agent.auditLog}'`,
      `touch '${certs}/evil.pem'`,
      `rm '${certs}/key.pem'`,
      `chmod 666 '${certs}/key.pem'`,
    ];
    const r = await run(writes.map((w) => `if (${w}) 2>/dev/null; then echo WROTE; else echo REFUSED; fi`).join('; '));
    expect(r.stdout.trim().split('\n')).toEqual(writes.map(() => 'REFUSED'));
    expect(files.map(sha)).toEqual(before);
    expect(readdirSync(certs).sort()).toEqual(listing);
    expect(readFileSync(agent.auditLog, 'utf8').startsWith(auditBefore)).toBe(true);
    expect(await serving()).toBe(true);
  });

  it('cannot ptrace or signal the agent: kill -9 $PPID, by pid, by name, kill -9 -1', async () => {
    const script = [
      `python3 -c "import ctypes; l=ctypes.CDLL(None, use_errno=True); print('ptrace', l.ptrace(16, ${agent.pid}, 0, 0), ctypes.get_errno())"`,
      'kill -9 $PPID 2>/dev/null',
      `kill -9 ${agent.pid} 2>/dev/null`,
      // By name (the pattern would match this script itself with -f).
      'pkill -9 -x node',
      'echo after-kills',
      // Every process the caller may signal but itself: in the sandbox, only the task's own.
      'kill -9 -1',
      'echo after-all',
    ].join('\n');
    const r = await run(script);
    expect(r.stdout).toMatch(/^ptrace -1 3$/m); // ESRCH: no such process in the task's world
    expect(r.stdout).toContain('after-kills');
    expect(r.stdout).toContain('after-all');
    expect(() => process.kill(agent.pid, 0)).not.toThrow();
    expect(await serving()).toBe(true);
  });
});

/** Starts every way of outliving a task, tagged with `m`, then waits for `go` in its work dir. */
function escapes(m: string, then: string): string {
  return [
    `setsid sleep ${m} >/dev/null 2>&1 &`,
    `nohup sleep ${m} >/dev/null 2>&1 &`,
    `(sh -c "sleep ${m} >/dev/null 2>&1 &" &)`,
    `setsid sh -c 'trap "" HUP TERM; exec sleep ${m}' </dev/null >/dev/null 2>&1 &`,
    'echo ready',
    'i=0; while [ ! -e go ] && [ $i -lt 1000 ]; do sleep 0.05; i=$((i+1)); done',
    then,
  ].join('\n');
}

/**
 * Runs an escaping task; once it is ready, waits until its four escapees run (each is a `sleep`
 * that starts a moment after the task says ready: a fork, then an exec), then lets it go on.
 */
async function escapeRun(
  then: string,
  extra: Partial<ExecRequest> = {},
  onReady?: (taskId: string) => void,
): Promise<{ r: ExecResult; m: string; seen: number }> {
  const m = sleepMarker();
  const taskId = `esc-${++n}`;
  let seen = 0;
  let counted: Promise<void> | undefined;
  // The task's deadline leaves room for the wait (its wait for `go` is bounded in the script too).
  const r = await execCollect(op.agent, { taskId, argv: ['/bin/sh', '-c', escapes(m, then)], timeoutMs: 60_000, ...extra }, (ev) => {
    if (!ev.stdout?.toString().includes('ready') || counted) return;
    counted = (async () => {
      seen = await awaitPidsWith(m, 4);
      writeFileSync(join(agent.dataDir, 'tasks', taskId, 'go'), '');
      onReady?.(taskId);
    })();
  });
  await counted;
  return { r, m, seen };
}

describe('nothing a task started outlives it', () => {
  it('after its exit', async () => {
    const { r, m, seen } = await escapeRun('exit 0');
    expect(seen).toBe(4);
    expect(exitOf(r)?.code).toBe(0);
    expect(await noneLeft(m)).toBe(true);
  });

  it('after its timeout', async () => {
    const { r, m, seen } = await escapeRun('sleep 600', { timeoutMs: 3000 });
    expect(seen).toBe(4);
    expect(exitOf(r)?.reason).toBe('timeout');
    expect(await noneLeft(m)).toBe(true);
  });

  it('after Cancel', async () => {
    const { r, m, seen } = await escapeRun('sleep 600', {}, (taskId) => void unary(op.agent.Cancel.bind(op.agent), { taskId }));
    expect(seen).toBe(4);
    expect(exitOf(r)?.reason).toBe('cancelled');
    expect(await noneLeft(m)).toBe(true);
  });

  it('after its output cap', async () => {
    const { r, m, seen } = await escapeRun('exec yes', { outputCapBytes: 64 * 1024 });
    expect(seen).toBe(4);
    expect(exitOf(r)?.reason).toBe('output_cap');
    expect(await noneLeft(m)).toBe(true);
    expect(await serving()).toBe(true);
  });
});

describe('env names that change how programs load', () => {
  it('are refused at the edge with ENV_REFUSED; a good Exec still works', async () => {
    const names = ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'NODE_OPTIONS', 'GCONV_PATH', 'BASH_ENV', 'ENV', 'PYTHONSTARTUP', 'PERL5OPT', 'GLIBC_TUNABLES'];
    const codes = [];
    for (const k of names) codes.push((await run('true', { env: { [k]: '/tmp/x' } })).error?.gaxxCode);
    expect(codes).toEqual(names.map(() => 'ENV_REFUSED'));
    const good = await run('echo "$GREETING"', { env: { GREETING: 'hello' } });
    expect(good.stdout).toBe('hello\n');
  });
});

describe('a task sees its own work dir of the data area, nothing else of it', () => {
  it("not another task's scratch dir (running or done), not files uploaded elsewhere; a named work dir is its own", async () => {
    // A running task with a secret in its scratch dir, and files of the data area outside any task's.
    const holder = execCollect(op.agent, {
      taskId: 'holder-1',
      argv: ['/bin/sh', '-c', `echo TOKEN=secret-of-holder > secret.txt; sleep ${sleepMarker()}`],
      timeoutMs: 60_000,
    });
    const data = agent.dataDir;
    await vi.waitFor(() => expect(existsSync(join(data, 'tasks', 'holder-1', 'secret.txt'))).toBe(true), { timeout: 30_000, interval: 50 });
    const done = await run('echo done-secret > left.txt');
    expect(exitOf(done)?.code).toBe(0);
    const doneId = `iso-${n}`;
    expect(readFileSync(join(data, 'tasks', doneId, 'left.txt'), 'utf8')).toBe('done-secret\n');
    for (const d of ['deploy', 'job']) mkdirSync(join(data, d), { recursive: true });
    writeFileSync(join(data, 'deploy', 'db.env'), 'DB_PASSWORD=uploaded\n');
    writeFileSync(join(data, 'job', 'tool.sh'), 'echo tool\n');
    for (const f of [join(data, 'deploy'), join(data, 'job')]) execFileSync('chown', ['-R', `${AGENT_UID}:${AGENT_GID}`, f]);
    try {
      const probe = await run(
        [
          'ls -A ..; ls -A ' + data,
          `cat ${data}/tasks/holder-1/secret.txt ${data}/tasks/${doneId}/left.txt ${data}/deploy/db.env ../holder-1/secret.txt`,
          'echo mine > own.txt && cat own.txt',
        ].join('; '),
      );
      // Only its own dir in tasks/ (seen as +task), only tasks/ in the data dir; every read refused.
      expect(probe.stdout).toBe('+task\ntasks\nmine\n');
      expect(probe.stderr.match(/No such file or directory/g)).toHaveLength(4);
      expect(probe.stdout + probe.stderr).not.toMatch(/secret-of-holder|done-secret|uploaded/);
      // A named work dir: its own files, and still nothing else.
      const named = await run(`cat tool.sh; ls -A ${data}; cat ${data}/deploy/db.env`, { workDir: 'job' });
      expect(named.stdout).toBe('echo tool\njob\n');
      expect(named.stderr).toMatch(/db\.env: No such file or directory/);
      expect(await serving()).toBe(true);
    } finally {
      await unary(op.agent.Cancel.bind(op.agent), { taskId: 'holder-1' });
      await holder;
    }
  });
});

describe('a data dir outside /tmp (as on fleet hosts)', () => {
  it('is an empty, read-only dir to tasks but for their own work dir, which stays writable', async () => {
    const data = mkdtempSync(join('/var/tmp', 'gaxx-data-'));
    rmSync(data, { recursive: true, force: true });
    const a = await startAgent({ certsDir: pki.agent.dir, env: { GAXX_AGENT_TOKEN: TOKEN }, dataDir: data });
    const c = clientFor(a);
    try {
      mkdirSync(join(data, 'deploy'), { recursive: true });
      writeFileSync(join(data, 'deploy', 'db.env'), 'DB_PASSWORD=uploaded\n');
      execFileSync('chown', ['-R', `${AGENT_UID}:${AGENT_GID}`, join(data, 'deploy')]);
      const r = await execCollect(c.agent, {
        taskId: 'outside-1',
        argv: ['/bin/sh', '-c', `ls -A ${data}; cat ${data}/deploy/db.env; touch ${data}/planted; echo mine > own.txt && cat own.txt`],
      });
      expect(r.stdout).toBe('tasks\nmine\n');
      expect(r.stderr).toMatch(/db\.env: No such file or directory/);
      expect(r.stderr).toMatch(/planted'?: Read-only file system/);
      expect(existsSync(join(data, 'planted'))).toBe(false);
      expect(readFileSync(join(data, 'tasks', 'outside-1', 'own.txt'), 'utf8')).toBe('mine\n');
      expect(await serving(c)).toBe(true);
    } finally {
      c.close();
      await a.stop();
      for (const d of [data, `${data}-audit`, `${data}-state`]) rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('dirs hidden from tasks (--task-hidden)', () => {
  it("a hidden dir is empty and read-only to tasks, its neighbour is not; the agent's files are untouched", async () => {
    // Outside /tmp (which every sandbox replaces) and readable by the agent's user: what a task
    // of an agent running as the operator could read, such as gaxx's own config dir.
    const root = mkdtempSync(join('/var/tmp', 'gaxx-hidden-'));
    try {
      for (const d of ['hidden', 'visible']) {
        mkdirSync(join(root, d, 'ca'), { recursive: true });
        writeFileSync(join(root, d, 'ca', 'ca-key.pem'), `KEY-${d}\n`, { mode: 0o644 });
      }
      chmodSync(root, 0o755);
      const hider = await startAgent({ certsDir: pki.agent.dir, env: { GAXX_AGENT_TOKEN: TOKEN }, args: ['--task-hidden', join(root, 'hidden')] });
      const c = clientFor(hider);
      try {
        const r = await execCollect(c.agent, {
          taskId: 'hidden-1',
          argv: ['/bin/sh', '-c', `cat ${root}/visible/ca/ca-key.pem; ls -A ${root}/hidden | wc -l; cat ${root}/hidden/ca/ca-key.pem; touch ${root}/hidden/x`],
        });
        expect(exitOf(r)?.code).not.toBe(0);
        expect(r.stdout).toBe('KEY-visible\n0\n');
        expect(r.stderr).toMatch(/hidden\/ca\/ca-key\.pem: No such file or directory/);
        expect(r.stderr).toMatch(/Read-only file system/);
        expect(readFileSync(join(root, 'hidden', 'ca', 'ca-key.pem'), 'utf8')).toBe('KEY-hidden\n');
        expect(existsSync(join(root, 'hidden', 'x'))).toBe(false);
        expect(await serving(c)).toBe(true);
      } finally {
        c.close();
        await hider.stop();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('a host that cannot sandbox', () => {
  it('refuses tasks with ISOLATION_UNAVAILABLE but keeps serving; --unsafe-no-isolation runs them and is audited', async () => {
    const certsDir = pki.agent.dir;
    const refusing = await startAgent({ certsDir, env: { GAXX_AGENT_TOKEN: TOKEN }, args: ['--bwrap', '/nonexistent/bwrap'] });
    const c1 = clientFor(refusing);
    const r = await execCollect(c1.agent, { taskId: 'no-iso-1', argv: ['true'] });
    expect(r.error?.gaxxCode).toBe('ISOLATION_UNAVAILABLE');
    expect((await unary<object, InfoResponse__Output>(c1.agent.Info.bind(c1.agent), {})).ok).toBe(true);
    c1.close();
    await refusing.stop();
    const unsafe = await startAgent({ certsDir, env: { GAXX_AGENT_TOKEN: TOKEN }, args: ['--bwrap', '/nonexistent/bwrap', '--unsafe-no-isolation'] });
    const c2 = clientFor(unsafe);
    expect(await serving(c2)).toBe(true);
    c2.close();
    const started = readFileSync(unsafe.auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.event === 'agent_started');
    expect(started).toMatchObject({ sandbox: 'none', unsafeNoIsolation: true });
    await unsafe.stop();
  });
});

describe('the agent killed with -9', () => {
  it('takes every task process with it', async () => {
    const m = sleepMarker();
    const victim = await startAgent({ certsDir: pki.agent.dir, env: { GAXX_AGENT_TOKEN: TOKEN } });
    const c = clientFor(victim);
    let seen = 0;
    let killed: Promise<void> | undefined;
    const r = await execCollect(c.agent, { taskId: 'orphan-1', argv: ['/bin/sh', '-c', escapes(m, 'sleep 600')] }, (ev) => {
      if (!ev.stdout?.toString().includes('ready') || killed) return;
      // As in escapeRun: the escapees may start a moment after the task says ready.
      killed = (async () => {
        seen = await awaitPidsWith(m, 4);
        victim.kill('SIGKILL');
      })();
    });
    await killed;
    c.close();
    expect(seen).toBe(4);
    expect(r.error).toBeDefined();
    expect(await noneLeft(m, 10_000)).toBe(true);
    expect(await serving()).toBe(true);
  });
});
