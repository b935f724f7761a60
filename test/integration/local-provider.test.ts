// The local provider: real gaxx-agent processes on distinct loopback addresses, started from the
// installed agent bundle (as nobody when we are root), reachable over mTLS with certificates
// naming their address; destroy stops them by pid and refuses another fleet's instance.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa, loadCertDir } from '../../certs/index.js';
import { createLocalProvider, LOCAL_AGENT_UID } from '../../cli/providers/local.js';
import { isAgentProcess } from '../../cli/providers/local-process.js';
import type { Instance, Provider } from '../../cli/providers/types.js';
import { isGaxxError } from '../../proto/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { httpsGet } from '../helpers/metrics.js';
import { deepTree } from '../helpers/deep-tree.js';
import { issueCertDir } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';

let dir: string;
let runDir: string;
let provider: Provider;
let operatorDir: string;
let monitorDir: string;
const made: Instance[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-local-test-'));
  // Not inside `dir` (0700): the agent user must be able to reach it.
  runDir = join(tmpdir(), `gaxx-local-run-${process.pid}-${Date.now()}`);
  const { ca } = await FleetCa.init(join(dir, 'ca'));
  operatorDir = (await issueCertDir(ca, join(dir, 'operator'), { identity: { role: 'operator', name: 'alice' } })).dir;
  monitorDir = (await issueCertDir(ca, join(dir, 'monitor'), { identity: { role: 'monitor', name: 'prom' } })).dir;
  // Port 0: each agent picks a free port, so parallel runs on this machine never collide.
  provider = createLocalProvider({ options: { caDir: join(dir, 'ca'), stateDir: join(dir, 'state'), runDir, port: 0 } });
  for (const label of ['a1', 'a2']) made.push(await provider.create({ fleet: 'lf', label }));
}, 120_000);

afterAll(async () => {
  // Every fleet the tests made, also those a failed test left running.
  for (const fleet of ['lf', 'lf2', 'lf3']) for (const i of await provider.list(fleet)) await provider.destroy(fleet, i.id);
  rmSync(dir, { recursive: true, force: true });
  rmSync(runDir, { recursive: true, force: true });
});

type AgentRecord = { pid: number; port: number; metricsPort?: number; bundle: string; dir: string };
function record(id: string): AgentRecord {
  return JSON.parse(readFileSync(join(dir, 'state', `${id}.json`), 'utf8')) as AgentRecord;
}

describe('local provider', () => {
  it('starts each agent on its own loopback address, tagged with its fleet, running', async () => {
    // Loopback addresses of their own (which ones depends on the local agents others run on this machine).
    expect(made.every((i) => /^127\.0\.0\.\d+$/.test(i.ipv4 ?? '') && i.ipv4 !== '127.0.0.1')).toBe(true);
    expect(new Set(made.map((i) => i.ipv4)).size).toBe(2);
    const listed = await provider.list('lf');
    expect(listed.map((i) => i.status)).toEqual(['running', 'running']);
    expect(listed.every((i) => i.tags.includes('gaxx-fleet:lf'))).toBe(true);
    expect(await provider.list('other')).toEqual([]);
  });

  it('agents answer over mTLS with a certificate naming their address, and run tasks as nobody', async () => {
    const creds = loadCertDir(operatorDir);
    for (const inst of made) {
      const { port } = record(inst.id);
      const client = AgentClient.connect({ address: `${inst.ipv4}:${port}`, expect: { fleet: 'lf', host: inst.label } }, creds);
      try {
        const r = await client.run({ taskId: `t-${inst.label}`, argv: ['id', '-u'] });
        expect(r.exit.code).toBe(0);
        expect(r.stdout.toString().trim()).toBe(process.getuid?.() === 0 ? String(LOCAL_AGENT_UID) : String(process.getuid?.()));
      } finally {
        client.close();
      }
    }
  });

  it('each agent serves its metrics over mTLS on its own address, at the port its instance reports (as a fleet records it for the dashboard)', async () => {
    for (const inst of made) {
      const { metricsPort, port } = record(inst.id);
      expect(metricsPort).toBeGreaterThan(0);
      expect(metricsPort).not.toBe(port);
      expect(inst.metrics).toBe(`${inst.ipv4}:${metricsPort}`);
      expect((await provider.get(inst.id))?.metrics).toBe(inst.metrics);
      const res = await httpsGet({ host: inst.ipv4 as string, port: metricsPort as number, path: '/metrics', certDir: monitorDir });
      expect(res.status).toBe(200);
      expect(res.body).toMatch(/^gaxx_agent_/m);
      // A client without a certificate is refused there, as on any agent's metrics port.
      const bare = await httpsGet({ host: inst.ipv4 as string, port: metricsPort as number, path: '/metrics', certDir: monitorDir, noCert: true }).catch(
        (e: Error) => e,
      );
      expect(bare instanceof Error || bare.status !== 200).toBe(true);
    }
  });

  it('refuses a second instance with the same name (ALREADY_EXISTS) and a bad option (CONFIG_INVALID)', async () => {
    const err = await provider.create({ fleet: 'lf', label: 'a1', index: 0 }).catch((e: unknown) => e);
    expect(isGaxxError(err) && err.code).toBe('ALREADY_EXISTS');
    let bad: unknown;
    try {
      createLocalProvider({ options: { caDir: 'x', stateDir: 'y', port: 70000 } });
    } catch (e) {
      bad = e;
    }
    expect(isGaxxError(bad) && bad.code).toBe('CONFIG_INVALID');
    let same: unknown;
    try {
      createLocalProvider({ options: { caDir: 'x', stateDir: 'y', port: 9000, metricsPort: 9000 } });
    } catch (e) {
      same = e;
    }
    expect(isGaxxError(same) && same.code).toBe('CONFIG_INVALID');
    expect((same as Error).message).toMatch(/metricsPort: the agents cannot serve gRPC and metrics on one port/);
  });

  it('a host whose address something else binds after it was found free starts again on another; concurrent creates get distinct ones', async () => {
    const port = await freePort();
    const fixed = createLocalProvider({ options: { caDir: join(dir, 'ca'), stateDir: join(dir, 'state'), runDir, port } });
    // Something that is not ours binds the address the host was given, between the check that
    // found it free and the agent's own bind: as soon as the host is recorded, before its agent
    // (a Node process still loading) listens.
    const squatter = createServer();
    let squatted: string | undefined;
    const watcher = watch(join(dir, 'state'));
    const bound = new Promise<void>((resolve, reject) => {
      watcher.on('change', (_, name) => {
        if (squatted !== undefined || name !== 'lf2-b0.json' || !existsSync(join(dir, 'state', 'lf2-b0.json'))) return;
        squatted = (record('lf2-b0') as AgentRecord & { address: string }).address;
        watcher.close();
        squatter.once('error', reject).listen({ host: squatted, port }, resolve);
      });
    });
    try {
      const other = await fixed.create({ fleet: 'lf2', label: 'b0', index: 0 });
      await bound;
      expect(other.ipv4).not.toBe(squatted);
      expect(record('lf2-b0')).toMatchObject({ address: other.ipv4, port });
      const client = AgentClient.connect({ address: `${other.ipv4}:${port}`, expect: { fleet: 'lf2', host: 'b0' } }, loadCertDir(operatorDir));
      try {
        expect((await client.run({ taskId: 't-lf2', argv: ['true'] })).exit.code).toBe(0);
      } finally {
        client.close();
      }
      // Creates running at once each claim an address of their own, none where something else listens.
      const many = await Promise.all(['c0', 'c1', 'c2'].map((label, index) => fixed.create({ fleet: 'lf3', label, index })));
      const addresses = many.map((i) => i.ipv4);
      expect(new Set(addresses).size).toBe(3);
      expect(addresses).not.toContain(squatted);
      expect(addresses).not.toContain(other.ipv4);
      expect((await fixed.list('lf3')).map((i) => i.status)).toEqual(['running', 'running', 'running']);
      for (const i of many) expect(await fixed.destroy('lf3', i.id)).toBe('deleted');
      expect(await fixed.destroy('lf2', other.id)).toBe('deleted');
    } finally {
      watcher.close();
      if (squatter.listening) await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it("another installation's fleet of the same name gets agents of its own: its create and destroy leave this one's files and agent alone", async () => {
    // A second GAXX_HOME: its own CA and state dir, the same run dir (the user's default is one for all homes).
    const home2 = mkdtempSync(join(tmpdir(), 'gaxx-local-test-'));
    await FleetCa.init(join(home2, 'ca'));
    const other = createLocalProvider({ options: { caDir: join(home2, 'ca'), stateDir: join(home2, 'state'), runDir, port: 0 } });
    try {
      const mine = made[0] as Instance;
      const myRecord = JSON.parse(readFileSync(join(dir, 'state', `${mine.id}.json`), 'utf8')) as { dir: string; port: number };
      const myCert = readFileSync(join(myRecord.dir, 'certs', 'cert.pem'), 'utf8');
      const theirs = await other.create({ fleet: 'lf', label: 'a1', index: 0 });
      expect(theirs.id).toBe(mine.id);
      const theirRecord = JSON.parse(readFileSync(join(home2, 'state', `${theirs.id}.json`), 'utf8')) as { dir: string };
      expect(theirRecord.dir).not.toBe(myRecord.dir);
      expect(readFileSync(join(myRecord.dir, 'certs', 'cert.pem'), 'utf8')).toBe(myCert);
      expect(await other.destroy('lf', theirs.id)).toBe('deleted');
      expect(existsSync(join(myRecord.dir, 'certs', 'cert.pem'))).toBe(true);
      // Its last host gone, the other installation's dir in the run dir is gone too; this one's stays.
      expect(existsSync(dirname(theirRecord.dir))).toBe(false);
      expect(existsSync(dirname(myRecord.dir))).toBe(true);
      // This installation's agent still answers with this installation's certificate.
      const client = AgentClient.connect({ address: `${mine.ipv4}:${myRecord.port}`, expect: { fleet: 'lf', host: mine.label } }, loadCertDir(operatorDir));
      try {
        expect((await client.run({ taskId: 't-after-other-home', argv: ['true'] })).exit.code).toBe(0);
      } finally {
        client.close();
      }
    } finally {
      // Also when a check failed: no agent of the second home is left running.
      for (const i of await other.list('lf')) await other.destroy('lf', i.id);
      rmSync(home2, { recursive: true, force: true });
    }
  });

  it("a record whose pid is now another installation's agent (a pid reused) is not taken for its own: listed stopped, and destroy leaves that agent running", async () => {
    const home2 = mkdtempSync(join(tmpdir(), 'gaxx-local-test-'));
    await FleetCa.init(join(home2, 'ca'));
    const other = createLocalProvider({ options: { caDir: join(home2, 'ca'), stateDir: join(home2, 'state'), runDir, port: 0 } });
    try {
      const mine = record((made[0] as Instance).id);
      const theirs = await other.create({ fleet: 'lf', label: 'a9' });
      const path = join(home2, 'state', `${theirs.id}.json`);
      const theirRecord = JSON.parse(readFileSync(path, 'utf8')) as AgentRecord;
      // Its agent gone, and its pid now this installation's agent's (which runs the same installed bundle).
      process.kill(theirRecord.pid, 'SIGKILL');
      await expect.poll(() => isAgentProcess(theirRecord.pid, theirRecord.bundle), { timeout: 30_000 }).toBe(false);
      writeFileSync(path, JSON.stringify({ ...theirRecord, pid: mine.pid }));
      expect(mine.bundle).toBe(theirRecord.bundle);
      expect((await other.get(theirs.id))?.status).toBe('stopped');
      expect(await other.destroy('lf', theirs.id)).toBe('deleted');
      expect(isAgentProcess(mine.pid, mine.bundle)).toBe(true);
      expect((await provider.get((made[0] as Instance).id))?.status).toBe('running');
    } finally {
      for (const i of await other.list('lf')) await other.destroy('lf', i.id);
      rmSync(home2, { recursive: true, force: true });
    }
  });

  it('destroy refuses another fleet, then stops the agent by pid and forgets it', async () => {
    const inst = made[1] as Instance;
    const { pid, bundle, dir: agentDir } = record(inst.id);
    expect(await provider.destroy('other', inst.id)).toBe('refused');
    expect(isAgentProcess(pid, bundle)).toBe(true);
    expect(await provider.destroy('lf', inst.id)).toBe('deleted');
    expect(isAgentProcess(pid, bundle)).toBe(false);
    // The installation's dir holds the other host still.
    expect(existsSync(agentDir)).toBe(false);
    expect(existsSync(dirname(agentDir))).toBe(true);
    expect(existsSync(join(dir, 'state', `${inst.id}.pid`))).toBe(false);
    expect(await provider.get(inst.id)).toBeUndefined();
    expect(await provider.destroy('lf', inst.id)).toBe('gone');
    expect((await provider.list('lf')).map((i) => i.id)).toEqual([made[0]?.id]);
  });

  it("destroy removes an agent's files however deep its tasks or uploads made them", async () => {
    const inst = made[0] as Instance;
    const agentDir = record(inst.id).dir;
    // Past the JS stack of a recursive rmSync (a RangeError, and the instance was kept) and past PATH_MAX.
    deepTree(join(agentDir, 'data', 'deep'), 3000);
    expect(await provider.destroy('lf', inst.id)).toBe('deleted');
    expect(existsSync(agentDir)).toBe(false);
    // It was the installation's last host: its dir in the run dir went with it.
    expect(existsSync(dirname(agentDir))).toBe(false);
    expect(await provider.get(inst.id)).toBeUndefined();
  });

  it('a host made after the installation dir went has the dir made again, reachable by the agent user', async () => {
    const inst = await provider.create({ fleet: 'lf3', label: 'b1' });
    const agentDir = record(inst.id).dir;
    expect(statSync(dirname(agentDir)).mode & 0o777).toBe(0o711);
    const creds = loadCertDir(operatorDir);
    const client = AgentClient.connect({ address: `${inst.ipv4}:${record(inst.id).port}`, expect: { fleet: 'lf3', host: 'b1' } }, creds);
    try {
      expect((await client.run({ taskId: 't-after-home-gone', argv: ['true'] })).exit.code).toBe(0);
    } finally {
      client.close();
    }
    expect(await provider.destroy('lf3', inst.id)).toBe('deleted');
    expect(existsSync(dirname(agentDir))).toBe(false);
  });
});
