// Start-up refusals (one line, documented exit code), development-only profiling, and
// graceful shutdown, all with the built agent as a real process.
import { chmodSync, closeSync, cpSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa } from '../../certs/index.js';
import { exitCodeFor, type ErrorCode, type HealthCheckRequest, type HealthCheckResponse__Output } from '../../proto/index.js';
import { runAgentExpectFailure, startAgent, startAgentUnheard, stopAllAgents } from '../helpers/agent.js';
import { execCollect, exitOf, rawAgentClient, unary } from '../helpers/grpc.js';
import { taskGate } from '../helpers/gate.js';
import { eventually } from '../helpers/poll.js';
import { httpsGet } from '../helpers/metrics.js';
import { freePort } from '../helpers/ports.js';
import { issueCertDir, makePki, type Pki } from '../helpers/pki.js';

let dir: string;
let pki: Pki;
let expiredAgent: string;
let foreignAgent: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-agent-start-'));
  pki = await makePki(dir);
  const id = { role: 'agent' as const, fleet: 'test', host: 'h9' };
  const hourAgo = Date.now() - 3600_000;
  [{ dir: expiredAgent }, { dir: foreignAgent }] = await Promise.all([
    issueCertDir(pki.ca, join(dir, 'expired-agent'), { identity: id, notBefore: new Date(hourAgo - 3600_000), notAfter: new Date(hourAgo) }),
    issueCertDir(FleetCa.open(join(dir, 'other-ca')), join(dir, 'foreign-agent'), { identity: id }, pki.ca.certPem),
  ]);
});
afterAll(async () => {
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

function copyCerts(name: string): string {
  const to = join(dir, name);
  cpSync(pki.agent.dir, to, { recursive: true });
  return to;
}

async function expectRefused(o: Parameters<typeof runAgentExpectFailure>[0], code: ErrorCode): Promise<void> {
  const r = await runAgentExpectFailure(o);
  expect({ code: r.code, lines: r.stderr.trim().split('\n').length, named: r.stderr.includes(code) }).toEqual({
    code: exitCodeFor(code),
    lines: 1,
    named: true,
  });
}

describe('start-up refusals', () => {
  it('root in production', async () => {
    await expectRefused({ certsDir: copyCerts('root'), asRoot: true }, 'ROOT_REFUSED');
  });

  it('profiling in production, and nothing listens on the profiling port', async () => {
    const port = await freePort();
    await expectRefused({ certsDir: copyCerts('prof'), args: ['--profiling-listen', `127.0.0.1:${port}`] }, 'PROFILING_IN_PRODUCTION');
    const err = await new Promise<string>((r) => {
      const s = connect(port, '127.0.0.1', () => r('connected'));
      s.on('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'));
    });
    expect(err).toBe('ECONNREFUSED');
  });

  it('key file readable by others', async () => {
    const d = copyCerts('mode');
    chmodSync(join(d, 'key.pem'), 0o644);
    await expectRefused({ certsDir: d }, 'INSECURE_FILE_MODE');
  });

  it('missing, expired, foreign-signed and non-agent certificates', async () => {
    await expectRefused({ certsDir: join(dir, 'nowhere') }, 'NOT_FOUND');
    await expectRefused({ certsDir: expiredAgent }, 'CERT_EXPIRED');
    await expectRefused({ certsDir: foreignAgent }, 'CERT_INVALID');
    await expectRefused({ certsDir: pki.clients.operator.dir }, 'CERT_INVALID');
  });

  it('a listen address already in use', async () => {
    const held = createServer();
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', () => r()));
    const port = (held.address() as { port: number }).port;
    try {
      await expectRefused({ certsDir: copyCerts('busy'), args: ['--listen', `127.0.0.1:${port}`] }, 'UNAVAILABLE');
    } finally {
      await new Promise<void>((r) => held.close(() => r()));
    }
  });

  it('a state dir another agent runs on: refused naming its pid, and that agent keeps serving', async () => {
    const dataDir = join(dir, 'shared-data');
    const first = await startAgent({ certsDir: copyCerts('first'), dataDir });
    const r = await runAgentExpectFailure({ certsDir: copyCerts('second'), dataDir });
    expect({ code: r.code, lines: r.stderr.trim().split('\n').length }).toEqual({ code: exitCodeFor('FAILED_PRECONDITION'), lines: 1 });
    expect(r.stderr).toContain(`another gaxx-agent (pid ${first.pid}) runs on the state dir ${dataDir}-state`);
    const c = rawAgentClient(first.address, pki.clients.operator.dir);
    try {
      const done = await execCollect(c.agent, { taskId: 'after-second', argv: ['/bin/echo', 'still'] });
      expect(exitOf(done)?.code).toBe(0);
      expect(done.stdout).toBe('still\n');
    } finally {
      c.close();
    }
    // Once it is gone, its claim holds nothing: the next agent on the dir starts.
    await first.stop();
    const next = await startAgent({ certsDir: copyCerts('next'), dataDir });
    await next.stop();
  });

  it('bad flags and values', async () => {
    await expectRefused({ certsDir: copyCerts('flags'), args: ['--bogus'] }, 'USAGE');
    await expectRefused({ certsDir: copyCerts('values'), args: ['--capacity', 'lots'] }, 'CONFIG_INVALID');
  });
});

/** A profile can take a while to make on a loaded machine: 30 s before the GET gives up. */
function profGet(port: number, path: string, certDir: string): Promise<{ status: number; body: string }> {
  return httpsGet({ port, path, certDir, timeoutMs: 30_000 });
}

describe('development mode', () => {
  it('serves CPU profiles and heap snapshots to the operator over mTLS', async () => {
    const a = await startAgent({ certsDir: copyCerts('dev'), env: { GAXX_ENV: 'development' }, args: ['--profiling-listen', '127.0.0.1:0'] });
    const port = a.profilingPort as number;
    expect(port).toBeGreaterThan(0);
    const cpu = await profGet(port, '/debug/cpu?seconds=1', pki.clients.operator.dir);
    expect(cpu.status).toBe(200);
    expect(JSON.parse(cpu.body)).toHaveProperty('nodes');
    const heap = await profGet(port, '/debug/heap', pki.clients.operator.dir);
    expect(heap.status).toBe(200);
    expect(JSON.parse(heap.body)).toHaveProperty('snapshot');
    expect((await profGet(port, '/debug/heap', pki.clients.monitor.dir)).status).toBe(403);
    expect(await a.stop()).toBe(0);
  });
});

describe('the environment', () => {
  it('a GAXX_AGENT_* variable no setting reads (misspelt) is named in a warning at the start; the ones read are not', async () => {
    const a = await startAgent({
      certsDir: copyCerts('env'),
      env: { GAXX_AGENT_TASK_LIMIT: '{"cpuSeconds":1}', GAXX_AGENT_CAPACITY: '3', GAXX_AGENT_PORT: '9' },
    });
    expect(await eventually(() => a.stderr().includes('"ignoredEnv"'), 30_000), a.stderr()).toBe(true);
    const warning = a
      .stderr()
      .split('\n')
      .find((l) => l.includes('"ignoredEnv"'));
    expect(JSON.parse(warning as string)).toMatchObject({ level: 40, ignoredEnv: ['GAXX_AGENT_TASK_LIMIT'] });
    expect(await a.stop()).toBe(0);
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM lets a running task finish, then exits 0', async () => {
    const a = await startAgent({ certsDir: copyCerts('drain'), args: ['--shutdown-grace', '60s'] });
    const c = rawAgentClient(a.address, pki.clients.operator.dir);
    // The task ends only once the test has seen the agent drain.
    const gate = taskGate();
    const run = execCollect(c.agent, { taskId: 'drain-1', argv: ['sh', '-c', `${gate.wait}; echo done`] }, (ev) => {
      if (ev.started) a.kill('SIGTERM');
    });
    // Draining: health turns NOT_SERVING and new tasks are refused on the open connection.
    let status = '';
    for (let i = 0; i < 100 && status !== 'NOT_SERVING'; i++) {
      const h = await unary<HealthCheckRequest, HealthCheckResponse__Output>(c.health.Check.bind(c.health), { service: '' });
      status = h.ok ? h.value.status : 'error';
      if (status !== 'NOT_SERVING') await new Promise((r) => setTimeout(r, 20));
    }
    expect(status).toBe('NOT_SERVING');
    const late = await execCollect(c.agent, { taskId: 'drain-2', argv: ['true'] });
    gate.open();
    expect(late.error).toEqual({ status: 14, gaxxCode: 'UNAVAILABLE' });
    const r = await run;
    gate.remove();
    c.close();
    expect(r.stdout).toBe('done\n');
    expect(exitOf(r)?.code).toBe(0);
    expect(await a.exited).toBe(0);
  });
});

describe('a stderr that cannot take its logs', () => {
  it('(/dev/full) the agent serves, hears SIGTERM and exits 3 (FILE_ACCESS), not wedged retrying its log lines', async () => {
    const full = openSync('/dev/full', 'w');
    try {
      const port = await freePort();
      const a = await startAgentUnheard({ certsDir: copyCerts('log-full'), stderrFd: full, metrics: false }, port);
      // Every request logs nothing it must write: the agent answers as ever.
      const c = rawAgentClient(`127.0.0.1:${port}`, pki.clients.operator.dir);
      const r = await execCollect(c.agent, { taskId: 'log-full-1', argv: ['echo', 'served'] });
      c.close();
      expect(r.stdout).toBe('served\n');
      expect(exitOf(r)?.code).toBe(0);
      // Before: pino's destination retried its failed line every 100 ms, blocking the event
      // loop, so SIGTERM was never acted on (null: it had to be killed).
      expect(await a.stop()).toBe(exitCodeFor('FILE_ACCESS'));
    } finally {
      closeSync(full);
    }
  });
});
