/**
 * The scheduler daemon renews agent certificates: a real redis-server, two real agents (built;
 * run as nobody) in a registered fleet, the daemon as its own process with a 1 s renewal
 * interval. The agent past two thirds of its certificate's lifetime gets a new one and still
 * runs tasks; the fresh one is left alone; an unreachable agent and one presenting a revoked
 * certificate are logged, counted failures (the latter gets no new key) that do not stop the daemon.
 * The renewed agent's old certificate is revoked in the CA's list, and the daemon's dispatch
 * refuses the agent presenting a revoked one (read from the CA dir, not its own cert dir).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadCertDir } from '../../certs/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { registerFleet, registeredFleets } from '../../scheduler/queue/fleets.js';
import type { TaskQueue } from '../../scheduler/queue/queue.js';
import type { RedisSettings } from '../../scheduler/redis/redis.js';
import { CertRenewer } from '../../scheduler/renewal/renewer.js';
import { runAndWait } from '../../scheduler/queue/run.js';
import { startAgent, type AgentProcess } from '../helpers/agent.js';
import { runGaxx } from '../helpers/cli.js';
import { issueCertDir, type Pki, type PkiCertDir } from '../helpers/pki.js';
import type { TestRedis } from '../helpers/redis.js';
import { startSchedulerProcess, type SchedulerProcess } from '../helpers/scheduler.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

const HOUR = 3600_000;

describe('scheduler certificate renewal', () => {
  let world: SchedulerWorld;
  let dir: string;
  let pki: Pki;
  let stale: PkiCertDir;
  let redis: TestRedis;
  let settings: RedisSettings;
  let q: TaskQueue;
  let fresh: AgentProcess;
  let old: AgentProcess;
  let leaked: AgentProcess;
  let leakedCert: PkiCertDir;
  let daemon: SchedulerProcess;

  async function info(agent: AgentProcess, host: string) {
    const c = AgentClient.connect({ address: agent.address, expect: { fleet: 'web', host } }, loadCertDir(pki.clients.scheduler.dir));
    try {
      return await c.info();
    } finally {
      c.close();
    }
  }

  async function renewals(): Promise<Record<string, number>> {
    const text = await (await fetch(`http://${String(daemon.started.metrics)}/metrics`)).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^gaxx_scheduler_cert_renewals_total\{outcome="(\w+)"\} (\d+)$/gm)) out[m[1] as string] = Number(m[2]);
    return out;
  }

  beforeAll(async () => {
    world = await startSchedulerWorld({ agents: 0, prefix: 'gxrn-', pki: { fleet: 'web', host: 'fresh' } });
    ({ dir, pki, redis, settings, queue: q } = world);
    // 75% of its lifetime gone: due whatever the per-host jitter (+-5%).
    stale = await issueCertDir(pki.ca, join(dir, 'old'), {
      identity: { role: 'agent', fleet: 'web', host: 'old' },
      hosts: ['127.0.0.1', 'localhost'],
      notBefore: new Date(Date.now() - 3 * HOUR),
      notAfter: new Date(Date.now() + HOUR),
    });
    // Due too, but revoked once its agent runs: whoever presents it must not get a fresh key.
    leakedCert = await issueCertDir(pki.ca, join(dir, 'leaked'), {
      identity: { role: 'agent', fleet: 'web', host: 'leaked' },
      hosts: ['127.0.0.1', 'localhost'],
      notBefore: new Date(Date.now() - 3 * HOUR),
      notAfter: new Date(Date.now() + HOUR),
    });
    [fresh, old, leaked] = await Promise.all([
      startAgent({ certsDir: pki.agent.dir }),
      startAgent({ certsDir: stale.dir }),
      startAgent({ certsDir: leakedCert.dir }),
    ]);
    pki.ca.revoke(leakedCert.serial);
    // The operator issued its replacement (not deployed yet): a valid register entry for the host.
    await pki.ca.issue({ identity: { role: 'agent', fleet: 'web', host: 'leaked' }, hosts: ['127.0.0.1', 'localhost'] });
    await registerFleet(q.redis, 'web', [
      { host: 'fresh', address: fresh.address },
      { host: 'old', address: old.address },
      { host: 'leaked', address: leaked.address },
    ]);
    // Nothing listens on port 1: every round's check of this agent fails.
    await registerFleet(q.redis, 'lost', [{ host: 'gone', address: '127.0.0.1:1' }]);
    daemon = await startSchedulerProcess({
      redisUrl: redis.url,
      stateDir: join(dir, 'state'),
      certsDir: pki.clients.scheduler.dir,
      args: ['--renew-interval', '1s', '--ca-dir', pki.caDir, '--operator-certs', pki.clients.operator.dir],
    });
  });

  afterAll(async () => {
    await world?.close();
  });

  it('renews the agent that reports renewal as due, leaves the other alone, and keeps serving', async () => {
    expect(await registeredFleets(q.redis)).toEqual(['lost', 'web']);
    expect((await info(old, 'old')).certRenewalDue).toBe(true);
    const now = await vi.waitFor(
      async () => {
        const n = await info(old, 'old');
        expect(n.certSerial).not.toBe(stale.serial);
        return n;
      },
      { timeout: 20_000, interval: 200 },
    );
    expect(now.certRenewalDue).toBe(false);
    // Once the agent serves its new certificate, the daemon revokes the one it served before,
    // pushes the list to it, then logs the renewal: the agent may answer with its new serial
    // before that is done.
    await vi.waitFor(() => expect(daemon.stderr()).toContain('agent certificate renewed'), { timeout: 30_000, interval: 50 });
    expect(pki.ca.revoked().has(stale.serial)).toBe(true);
    const renewedLog = daemon
      .stderr()
      .split('\n')
      .filter((l) => l.includes('agent certificate renewed'))
      .map((l) => JSON.parse(l) as { host: string; revoked: string[]; revocationPushed: boolean });
    expect(renewedLog).toEqual([expect.objectContaining({ host: 'old', revoked: [stale.serial], revocationPushed: true })]);
    const rec = pki.ca.list().find((r) => r.serial === now.certSerial);
    expect(rec?.identity).toEqual({ role: 'agent', fleet: 'web', host: 'old' });
    expect(rec?.hosts).toEqual(['127.0.0.1', 'localhost']);

    // A few more rounds: the fresh agent is checked and kept, the renewed one is not renewed
    // again; the unreachable and the revoked one fail every round and the daemon goes on.
    const m = await vi.waitFor(
      async () => {
        const c = await renewals();
        expect(c.not_due).toBeGreaterThanOrEqual(4);
        expect(c.failed).toBeGreaterThanOrEqual(4);
        return c;
      },
      { timeout: 10_000, interval: 200 },
    );
    expect(m).toMatchObject({ renewed: 1 });
    expect((await info(fresh, 'fresh')).certSerial).toBe(pki.agent.serial);
    expect((await info(old, 'old')).certSerial).toBe(now.certSerial);
    const failures = daemon
      .stderr()
      .split('\n')
      .filter((l) => l.includes('agent certificate renewal failed'))
      .map((l) => JSON.parse(l) as { host: string; code: string });
    expect(failures.filter((f) => f.host === 'gone').every((f) => f.code === 'UNAVAILABLE')).toBe(true);
    expect(failures.filter((f) => f.host === 'leaked').map((f) => f.code)).toContain('CERT_REVOKED');
    expect(failures.filter((f) => f.host === 'leaked').every((f) => f.code === 'CERT_REVOKED')).toBe(true);
    const leakedNow = await info(leaked, 'leaked');
    expect(leakedNow.certSerial).toBe(leakedCert.serial);
    expect(pki.ca.list().filter((r) => r.identity.role === 'agent' && r.identity.host === 'leaked')).toHaveLength(2);

    const out = await runAndWait(
      { runId: 'afterrenew', tasks: [{ taskId: 't', fleet: 'web', target: { host: 'old' }, argv: ['/bin/echo', 'renewed'] }] },
      { settings, signer: world.signer, worker: 'never', timeoutMs: 20_000 },
    );
    expect(out.results.get('t')).toMatchObject({ outcome: 'succeeded', exitCode: 0, host: old.address });
    expect(Buffer.concat((out.output.get('t') ?? []).map((c) => c.data)).toString()).toBe('renewed\n');

    // The scheduler's cert dir has no revoked.json: the refusal comes from the CA's list.
    const refused = await runAndWait(
      { runId: 'torevoked', tasks: [{ taskId: 't', fleet: 'web', target: { host: 'leaked' }, argv: ['/bin/echo', 'leaked'] }] },
      { settings, signer: world.signer, worker: 'never', timeoutMs: 20_000 },
    );
    expect(refused.results.get('t')).toMatchObject({ outcome: 'error', reason: 'CERT_REVOKED' });
    expect(refused.output.get('t') ?? []).toEqual([]);
  });

  it('stays off, logged once, without a CA or operator certificate', () => {
    const lines: string[] = [];
    const log = {
      info: (_o: object, msg?: string) => lines.push(`info ${msg}`),
      warn: (_o: object, msg?: string) => lines.push(`warn ${msg}`),
      error: (_o: object, msg?: string) => lines.push(`error ${msg}`),
    };
    const base = { redis: q.redis, intervalMs: 1000, schedulerCreds: loadCertDir(pki.clients.scheduler.dir), log };
    expect(CertRenewer.start({ ...base, caDir: join(dir, 'no-ca'), operatorCertDir: pki.clients.operator.dir })).toBeUndefined();
    expect(CertRenewer.start({ ...base, caDir: pki.caDir, operatorCertDir: join(dir, 'no-operator') })).toBeUndefined();
    expect(lines.filter((l) => l.startsWith('warn certificate renewal off'))).toHaveLength(2);
    expect(lines).toHaveLength(2);
  });

  it('a round leaves out a fleet another command holds (no agent of it is asked), and lets go of the fleets it held when it ends', async () => {
    const lines: string[] = [];
    const log = {
      info: (_o: object, msg?: string) => lines.push(`info ${msg}`),
      warn: (_o: object, msg?: string) => lines.push(`warn ${msg}`),
      error: (_o: object, msg?: string) => lines.push(`error ${msg}`),
    };
    const asked: string[] = [];
    let released = 0;
    const renewer = CertRenewer.start({
      redis: q.redis,
      intervalMs: HOUR,
      schedulerCreds: loadCertDir(pki.clients.scheduler.dir),
      caDir: pki.caDir,
      operatorCertDir: pki.clients.operator.dir,
      log,
      holdFleet: (fleet) => {
        asked.push(fleet);
        return fleet === 'web' ? { held: 'a gaxx certs rotate of fleet web is running (pid 1)' } : { release: () => void released++ };
      },
    });
    expect(renewer).toBeDefined();
    try {
      // Only fleet lost's one agent (nothing listens there) is checked: fleet web's three are not.
      expect(await renewer?.round()).toEqual({ renewed: 0, failed: 1, notDue: 0 });
    } finally {
      await renewer?.stop();
    }
    expect(asked.sort()).toEqual(['lost', 'web']);
    expect(released).toBe(1);
    expect(lines).toContain('info certificate renewal: fleet skipped this round (another command holds it)');
  });

  it('gaxx scheduler refuses a bad --renew-interval with USAGE', async () => {
    const r = await runGaxx(['scheduler', '--renew-interval', '5x'], { home: join(dir, 'home') });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('USAGE');
  });
});
