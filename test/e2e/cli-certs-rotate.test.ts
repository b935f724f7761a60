// `gaxx certs rotate --fleet F` with the built CLI against two real agents (built; run as
// nobody): fresh certificates pushed over mTLS, each agent then presents its new serial, a
// task running during the rotation finishes undisturbed, and the superseded certificates are
// revoked: the old key is refused by `gaxx exec` (a stand-in agent presenting it).
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { runGaxx, type CliRun } from '../helpers/cli.js';
import { startStandInAgent } from '../helpers/stand-in-agent.js';
import { execStarted, exitOf, rawAgentClient, unary } from '../helpers/grpc.js';
import { taskGate } from '../helpers/gate.js';
import { FleetCa } from '../../certs/index.js';
import { issueCertDir } from '../helpers/pki.js';
import { exitCodeFor, type InfoResponse__Output } from '../../proto/index.js';

let home: string;
const agents: Record<string, AgentProcess> = {};

const gaxx = (args: string[]): Promise<CliRun> => runGaxx(args, { home });

const operatorDir = () => join(home, 'config', 'operator');

async function serialOf(agent: AgentProcess): Promise<string> {
  const c = rawAgentClient(agent.address, operatorDir());
  try {
    const r = await unary<object, InfoResponse__Output>((req, md, opts, cb) => c.agent.Info(req, md, opts, cb), {});
    return r.ok ? r.value.certSerial : `error ${r.gaxxCode}`;
  } finally {
    c.close();
  }
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'gaxx-e2e-rotate-'));
  expect((await gaxx(['init', '--name', 'alice'])).code).toBe(0);
  for (const host of ['h1', 'h2']) {
    const dir = join(home, 'agents', host);
    const r = await gaxx(['certs', 'issue', '--role', 'agent', '--fleet', 'web', '--name', host, '--host', '127.0.0.1', '--host', 'localhost', '--out', dir]);
    expect(r.code, r.stderr).toBe(0);
    agents[host] = await startAgent({ certsDir: dir });
  }
});

afterAll(async () => {
  await stopAllAgents();
  rmSync(home, { recursive: true, force: true });
});

describe('gaxx certs rotate', () => {
  it('refuses an --agent HOST the fleet does not have, before rotating anything', async () => {
    const before = [await serialOf(agents.h1 as AgentProcess), await serialOf(agents.h2 as AgentProcess)];
    const r = await gaxx(['certs', 'rotate', '--fleet', 'web', '--agent', 'nosuchhost=127.0.0.1:1', '--json']);
    expect(r.code, r.stderr).toBe(4);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect([await serialOf(agents.h1 as AgentProcess), await serialOf(agents.h2 as AgentProcess)]).toEqual(before);
  });

  it('with --due-only leaves agents whose renewal is not due alone', async () => {
    const h1 = agents.h1 as AgentProcess;
    const before = await serialOf(h1);
    const r = await gaxx([
      'certs',
      'rotate',
      '--fleet',
      'web',
      '--due-only',
      '--agent',
      `h1=${h1.address}`,
      '--agent',
      `h2=${(agents.h2 as AgentProcess).address}`,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const results = JSON.parse(r.stdout) as Array<{ skipped?: boolean; newSerial: string }>;
    expect(results.every((x) => x.skipped === true && x.newSerial === '')).toBe(true);
    expect(await serialOf(h1)).toBe(before);
  });

  it('issues, pushes and verifies new agent certificates without interrupting a running task', async () => {
    const h1 = agents.h1 as AgentProcess;
    const h2 = agents.h2 as AgentProcess;
    const before = { h1: await serialOf(h1), h2: await serialOf(h2) };
    // h1's key as it was: what a thief of the old key would hold.
    const stolen = join(home, 'stolen-h1');
    mkdirSync(stolen);
    for (const f of ['cert.pem', 'key.pem', 'ca.pem']) copyFileSync(join(home, 'agents', 'h1', f), join(stolen, f));
    const c = rawAgentClient(h1.address, operatorDir());
    // The task runs from before the rotation to its end.
    const gate = taskGate();
    const long = (await execStarted(c.agent, { taskId: 'during-rotation', argv: ['/bin/sh', '-c', `${gate.wait}; echo survived`], timeoutMs: 150_000 })).result;
    const r = await gaxx([
      'certs',
      'rotate',
      '--fleet',
      'web',
      '--agent',
      `h1=${h1.address}`,
      '--agent',
      `h2=${h2.address}`,
      '--verify-timeout',
      '20s',
      '--json',
    ]);
    gate.open();
    expect(r.code, r.stderr).toBe(0);
    const results = JSON.parse(r.stdout) as Array<{
      host: string;
      ok: boolean;
      oldSerial: string;
      newSerial: string;
      revoked: string[];
      revocationPushed: boolean;
    }>;
    expect(results.map((x) => x.host).sort()).toEqual(['h1', 'h2']);
    for (const x of results) {
      expect(x.ok).toBe(true);
      expect(x.oldSerial).toBe(before[x.host as 'h1' | 'h2']);
      expect(x.newSerial).not.toBe(x.oldSerial);
      expect(x).toMatchObject({ revoked: [x.oldSerial], revocationPushed: true });
    }
    // The CA's list revokes both old serials, and each agent was sent it.
    const listed = JSON.parse((await gaxx(['certs', 'list', '--json'])).stdout) as Array<{ serial: string; status: string }>;
    for (const x of results) {
      expect(listed.find((l) => l.serial === x.oldSerial)?.status).toBe('revoked');
      expect(listed.find((l) => l.serial === x.newSerial)?.status).toBe('valid');
      expect(JSON.parse(readFileSync(join(home, 'agents', x.host, 'revoked.json'), 'utf8')).serials).toContain(x.oldSerial);
    }
    // The old key, presented by a stand-in where h1 was dialled, gets nothing from `gaxx exec`.
    const thief = await startStandInAgent(stolen);
    try {
      const refused = await gaxx(['exec', '--agent', thief.address, '--no-stdin', '--', 'true']);
      expect(refused.code, refused.stderr).toBe(exitCodeFor('CERT_REVOKED'));
      expect(refused.stderr).toContain(before.h1);
      expect(thief.calls).toEqual([]);
    } finally {
      await thief.close();
    }
    expect(await serialOf(h1)).toBe(results.find((x) => x.host === 'h1')?.newSerial);
    const done = await long;
    gate.remove();
    c.close();
    expect(exitOf(done)?.code).toBe(0);
    expect(done.stdout.trim()).toBe('survived');
  });

  it('with --due-only renews an agent past about two thirds of its certificate lifetime', async () => {
    const ca = FleetCa.open(join(home, 'config', 'ca'));
    const hour = 3600_000;
    const dir = join(home, 'agents', 'old');
    // 75% of its lifetime gone: due whatever the per-host jitter (+-5%).
    await issueCertDir(ca, dir, {
      identity: { role: 'agent', fleet: 'ops', host: 'old' },
      hosts: ['127.0.0.1', 'localhost'],
      notBefore: new Date(Date.now() - 3 * hour),
      notAfter: new Date(Date.now() + hour),
    });
    const old = await startAgent({ certsDir: dir });
    const r = await gaxx(['certs', 'rotate', '--fleet', 'ops', '--due-only', '--agent', `old=${old.address}`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [x] = JSON.parse(r.stdout) as Array<{ ok: boolean; skipped?: boolean; newSerial: string }>;
    expect(x).toMatchObject({ ok: true });
    expect(x?.skipped).toBeUndefined();
    expect(await serialOf(old)).toBe(x?.newSerial);
  });

  it('is refused at once while another command holds the fleet (its spawn or delete), naming it, and rotates nothing', async () => {
    const h1 = agents.h1 as AgentProcess;
    const h2 = agents.h2 as AgentProcess;
    const before = [await serialOf(h1), await serialOf(h2)];
    const lock = join(home, 'state', 'fleets', 'web.lock');
    mkdirSync(join(home, 'state', 'fleets'), { recursive: true });
    // Held by a process that lives: this one, as a gaxx spawn of the fleet would.
    writeFileSync(lock, JSON.stringify({ pid: process.pid, command: 'spawn' }));
    try {
      const r = await gaxx(['certs', 'rotate', '--fleet', 'web', '--agent', `h1=${h1.address}`, '--agent', `h2=${h2.address}`]);
      expect(r.code, r.stderr).toBe(exitCodeFor('FAILED_PRECONDITION'));
      expect(r.stderr).toContain(`a gaxx spawn of fleet web is running (pid ${process.pid}`);
    } finally {
      rmSync(lock, { force: true });
    }
    expect([await serialOf(h1), await serialOf(h2)]).toEqual(before);
  });

  it('three rotations at once: each rotates every agent or is refused naming the one that runs, and each agent then presents the certificate the CA lists as its valid one', async () => {
    const h1 = agents.h1 as AgentProcess;
    const h2 = agents.h2 as AgentProcess;
    const args = ['certs', 'rotate', '--fleet', 'web', '--agent', `h1=${h1.address}`, '--agent', `h2=${h2.address}`, '--verify-timeout', '20s'];
    const runs = await Promise.all([1, 2, 3].map(() => gaxx(args)));
    // Before, the ones that crossed failed with the agent's "key.pem does not match cert.pem"
    // and revoked the certificates the others had just issued.
    for (const r of runs) {
      if (r.code === 0) continue;
      expect(r.code, r.stderr).toBe(exitCodeFor('FAILED_PRECONDITION'));
      expect(r.stderr).toMatch(/a gaxx certs rotate of fleet web is running \(pid \d+/);
    }
    expect(runs.filter((r) => r.code === 0).length).toBeGreaterThan(0);
    const listed = JSON.parse((await gaxx(['certs', 'list', '--json'])).stdout) as Array<{ serial: string; identity: string; status: string }>;
    for (const [host, agent] of [
      ['h1', h1],
      ['h2', h2],
    ] as const) {
      const valid = listed.filter((l) => l.identity === `spiffe://gaxx/agent/web/${host}` && l.status === 'valid').map((l) => l.serial);
      expect(valid).toEqual([await serialOf(agent)]);
    }
  });

  it('refuses an unknown fleet with NOT_FOUND', async () => {
    const r = await gaxx(['certs', 'rotate', '--fleet', 'nope']);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('NOT_FOUND');
  });
});
