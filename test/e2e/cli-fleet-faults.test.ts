// gaxx spawn against the fake Linode and Vultr APIs behind a fault proxy (test/helpers/fault-proxy.ts):
// a creation whose answer was lost after the provider acted, a --fill that finds a second
// instance named like a ready host, a clean-up whose deletes fail, a fill that ends without any
// host, a delete while a spawn of the fleet runs, Ctrl-C during the bootstrap. Instances answer on
// loopback where no SSH runs, so every host that is not ready yet fails at the bootstrap step;
// what is checked is what the provider holds and what gaxx reports.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FleetCa } from '../../certs/index.js';
import { KnownHosts } from '../../cli/ssh/known-hosts.js';
import { FleetStore, readFleet } from '../../cli/state.js';
import { exitCodeFor } from '../../proto/index.js';
import type { Cluster, Redis } from 'ioredis';
import { fleetAgents, registerFleet } from '../../scheduler/index.js';
import { runGaxx, spawnGaxx, stopAllGaxx, type CliRun } from '../helpers/cli.js';
import type { FakeCloud } from '../helpers/fake-cloud.js';
import { FakeLinode } from '../helpers/fake-linode.js';
import { FakeVultr } from '../helpers/fake-vultr.js';
import { FaultProxy, type ProxiedRequest } from '../helpers/fault-proxy.js';
import { eventually } from '../helpers/poll.js';
import { startRedis, type TestRedis, withRedisAt } from '../helpers/redis.js';

const TOKEN = 'e2e-0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978';
let home: string;
let fake: FakeCloud | undefined;
let proxy: FaultProxy | undefined;
let redis: TestRedis;

const clouds = [
  { name: 'linode', make: () => new FakeLinode({ token: TOKEN }), env: (url: string) => ({ GAXX_LINODE_URL: url, LINODE_TOKEN: TOKEN }) },
  { name: 'vultr', make: () => new FakeVultr({ token: TOKEN }), env: (url: string) => ({ GAXX_VULTR_URL: url, VULTR_API_KEY: TOKEN }) },
] as const;

const isCreate = (r: ProxiedRequest): boolean => r.method === 'POST' && /\/instances$/.test(r.path);

async function world(cloud: (typeof clouds)[number]): Promise<{ fake: FakeCloud; proxy: FaultProxy; gaxx: (args: string[]) => Promise<CliRun> }> {
  const f = await cloud.make().start();
  fake = f;
  const p = await new FaultProxy(() => f.url).start();
  proxy = p;
  return { fake: f, proxy: p, gaxx: (args) => runGaxx(args, { home, env: { ...cloud.env(p.url), GAXX_REDIS_URL: redis.url } }) };
}

const fleetsDir = (): string => join(home, 'state', 'fleets');

/** Runs `fn` on a connection to the test Redis. */
const withRedis = <T>(fn: (redis: Redis | Cluster) => Promise<T>): Promise<T> => withRedisAt(redis.url, fn);

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.destroy();
});

beforeEach(async () => {
  home = mkdtempSync(join(tmpdir(), 'gaxx-e2e-fleet-faults-'));
  const init = await runGaxx(['init', '--name', 'alice'], { home });
  expect(init.code, init.stderr).toBe(0);
});

afterEach(async () => {
  await stopAllGaxx();
  await proxy?.stop();
  await fake?.stop();
  proxy = undefined;
  fake = undefined;
  rmSync(home, { recursive: true, force: true });
});

describe.each(clouds)('gaxx spawn --provider $name when a creation answer is lost', (cloud) => {
  it('adopts the instance the lost answer hid: one instance per host, every host reaches bootstrap, nothing left', async () => {
    const { fake, proxy, gaxx } = await world(cloud);
    let n = 0;
    proxy.rule = (r) => (isCreate(r) && n++ === 0 ? { kind: 'lose', status: 500 } : { kind: 'pass' });
    const r = await gaxx(['spawn', '--provider', cloud.name, '--count', '2', '--fleet', 'web', '--json', '--ssh-timeout', '1s']);
    // Not a refused label (Linode) nor a second instance (Vultr): both hosts fail only where SSH is missing.
    expect(r.code, r.stderr + r.stdout).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
    const out = JSON.parse(r.stdout) as { failed: { host: string; code: string }[]; destroyed: string[] };
    expect(out.failed.map((f) => f.code)).toEqual(['DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED']);
    expect(fake.requests.filter((q) => q.method === 'POST' && q.status < 300).length).toBe(2);
    expect(proxy.actions(isCreate)).toEqual(['lose500', 'pass']);
    expect(out.destroyed.length).toBe(2);
    expect(fake.instances.size).toBe(0);
  });
});

describe('gaxx spawn --fill', () => {
  const linode = clouds[0];

  it('leaves a ready host alone and destroys a second tagged instance named like it', async () => {
    const { fake, gaxx } = await world(linode);
    const good = fake.seed({ label: 'gaxx-web-0', tags: ['gaxx-fleet:web'] });
    const twin = fake.seed({ label: 'gaxx-web-0', tags: ['gaxx-fleet:web'] });
    const store = FleetStore.create(fleetsDir(), { fleet: 'web', provider: 'linode', count: 1, minCount: 1, settings: {} });
    await store.setHost(0, { status: 'ready', id: good.id, ipv4: good.ipv4, agent: `${good.ipv4 ?? ''}:8088` });
    const r = await gaxx(['spawn', '--fleet', 'web', '--fill', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const out = JSON.parse(r.stdout) as { ready: { name: string }[]; duplicatesDestroyed: string[] };
    expect(out.ready.map((h) => h.name)).toEqual(['gaxx-web-0']);
    expect(out.duplicatesDestroyed).toEqual([twin.id]);
    expect([...fake.instances.keys()]).toEqual([good.id]);
    // Nothing was bootstrapped again (nothing answers SSH there: it would have failed).
    expect(r.stderr).not.toMatch(/gaxx-web-0: connect/);
    expect(readFleet(fleetsDir(), 'web')?.hosts.map((h) => [h.status, h.id])).toEqual([['ready', good.id]]);
  });

  it('that ends without any host forgets the fleet as delete does: certificates revoked, known_hosts entries and registration removed', async () => {
    const { fake, gaxx } = await world(linode);
    const inst = fake.seed({ label: 'gaxx-web-0', tags: ['gaxx-fleet:web'], ipv4: '127.0.0.1' });
    const store = FleetStore.create(fleetsDir(), { fleet: 'web', provider: 'linode', count: 1, minCount: 1, settings: {} });
    await store.setHost(0, { status: 'created', id: inst.id, ipv4: inst.ipv4 });
    const certs = mkdtempSync(join(tmpdir(), 'gaxx-e2e-certs-'));
    rmSync(certs, { recursive: true });
    const issued = await runGaxx(['certs', 'issue', '--role', 'agent', '--fleet', 'web', '--name', 'gaxx-web-0', '--host', '127.0.0.1', '--out', certs], {
      home,
    });
    expect(issued.code, issued.stderr).toBe(0);
    rmSync(certs, { recursive: true, force: true });
    const knownHosts = join(home, 'config', 'ssh', 'known_hosts');
    new KnownHosts(knownHosts).add('127.0.0.1', 22, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ5b2dhcnR5c3VwZXJzZWNyZXRrZXlmb3J0ZXN0cw', 'web');
    await withRedis((r) => registerFleet(r, 'web', [{ host: 'gaxx-web-0', address: '127.0.0.1:8088' }]));

    const r = await gaxx(['spawn', '--fleet', 'web', '--fill', '--json', '--ssh-timeout', '1s']);
    expect(r.code, r.stderr + r.stdout).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
    expect(fake.instances.size).toBe(0);
    expect(existsSync(join(fleetsDir(), 'web.json'))).toBe(false);
    const ca = FleetCa.open(join(home, 'config', 'ca'));
    const revoked = ca.revoked();
    expect(ca.list().filter((c) => c.identity.role === 'agent' && c.identity.fleet === 'web' && !revoked.has(c.serial))).toEqual([]);
    expect(readFileSync(knownHosts, 'utf8')).not.toContain('gaxx-fleet=web');
    expect(await withRedis((r) => fleetAgents(r, 'web'))).toEqual([]);
  });
});

describe('gaxx spawn clean-up failures', () => {
  it('a clean-up whose deletes fail keeps the report, names the instances left and keeps their ids for delete', async () => {
    const { fake, proxy, gaxx } = await world(clouds[0]);
    proxy.rule = (q) => (q.method === 'DELETE' ? { kind: 'answer', status: 400 } : { kind: 'pass' });
    const r = await gaxx(['spawn', '--provider', 'linode', '--count', '2', '--fleet', 'web', '--json', '--ssh-timeout', '1s']);
    expect(r.code, r.stderr + r.stdout).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
    const out = JSON.parse(r.stdout) as { failed: { code: string }[]; notDestroyed: { id: string; code: string }[] };
    expect(out.failed.map((f) => f.code)).toEqual(['DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED']);
    expect(out.notDestroyed.map((n) => n.id).sort()).toEqual([...fake.instances.keys()].sort());
    expect(out.notDestroyed.map((n) => n.code)).toEqual(['FAILED_PRECONDITION', 'FAILED_PRECONDITION']);
    expect(
      readFleet(fleetsDir(), 'web')
        ?.hosts.map((h) => h.id)
        .sort(),
    ).toEqual([...fake.instances.keys()].sort());
    proxy.rule = () => ({ kind: 'pass' });
    const d = await gaxx(['delete', 'web', '--yes', '--json']);
    expect(d.code, d.stderr + d.stdout).toBe(0);
    expect(fake.instances.size).toBe(0);
  });
});

describe('gaxx spawn and gaxx delete of one fleet', () => {
  const linode = clouds[0];

  it("a delete while a spawn of the fleet runs is refused naming the spawn's pid; the spawn ends as it would have", async () => {
    const { fake, proxy, gaxx } = await world(linode);
    let open = (): void => undefined;
    const gate = new Promise<void>((r) => (open = r));
    proxy.rule = (q) => (isCreate(q) ? { kind: 'hold', until: gate } : { kind: 'pass' });
    const sp = spawnGaxx(['spawn', '--provider', 'linode', '--count', '2', '--fleet', 'web', '--json', '--ssh-timeout', '1s'], {
      home,
      env: { ...linode.env(proxy.url), GAXX_REDIS_URL: redis.url },
    });
    expect(await eventually(() => proxy.seen.filter(isCreate).length === 2, 60_000)).toBe(true);
    const d = await gaxx(['delete', 'web', '--yes', '--json']);
    expect(d.code, d.stderr + d.stdout).toBe(exitCodeFor('FAILED_PRECONDITION'));
    expect((JSON.parse(d.stdout) as { error: { message: string } }).error.message).toContain(`pid ${sp.pid}`);
    expect(existsSync(join(fleetsDir(), 'web.json'))).toBe(true);
    open();
    const e = await sp.done;
    expect(e.code, e.stderr).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
    expect(fake.instances.size).toBe(0);
  });

  it('the lock of a killed spawn does not stop a delete, which removes what the spawn left', async () => {
    const { fake, proxy, gaxx } = await world(linode);
    let open = (): void => undefined;
    const gate = new Promise<void>((r) => (open = r));
    proxy.rule = (q) => (isCreate(q) ? { kind: 'hold', until: gate } : { kind: 'pass' });
    const sp = spawnGaxx(['spawn', '--provider', 'linode', '--count', '2', '--fleet', 'web', '--json'], { home, env: linode.env(proxy.url) });
    expect(await eventually(() => proxy.seen.filter(isCreate).length === 2, 60_000)).toBe(true);
    sp.kill('SIGKILL');
    await sp.done;
    // The provider acts on what it was asked, whether or not anyone hears the answer.
    open();
    expect(await eventually(() => fake.instances.size === 2, 30_000)).toBe(true);
    const d = await gaxx(['delete', 'web', '--yes', '--json']);
    expect(d.code, d.stderr + d.stdout).toBe(0);
    expect((JSON.parse(d.stdout) as { destroyed: number }).destroyed).toBe(2);
    expect(fake.instances.size).toBe(0);
  });
});

describe('Ctrl-C of gaxx spawn', () => {
  it('during the bootstrap stops at once, not at --ssh-timeout, and names the instances left and what to run next', async () => {
    const linode = clouds[0];
    const { fake, proxy, gaxx } = await world(linode);
    const sp = spawnGaxx(['spawn', '--provider', 'linode', '--count', '2', '--fleet', 'web', '--json', '--ssh-timeout', '10m'], {
      home,
      env: linode.env(proxy.url),
    });
    await sp.line('stderr', (l) => /gaxx-web-\d: connect/.test(l));
    sp.kill('SIGINT');
    // Well before the 10 minutes of --ssh-timeout (this test's own timeout is far shorter).
    const e = await sp.done;
    expect(e.code, e.stderr).toBe(exitCodeFor('CANCELLED'));
    const out = JSON.parse(e.stdout) as { interrupted: boolean; left: { id: string; state: string }[]; next: { resume: string; remove: string } };
    expect(out.interrupted).toBe(true);
    expect(out.left.map((h) => h.id).sort()).toEqual([...fake.instances.keys()].sort());
    expect(out.left.map((h) => h.state)).toEqual(['created', 'created']);
    expect(out.next).toEqual({ resume: 'gaxx spawn --fleet web --fill', remove: 'gaxx delete web' });
    const d = await gaxx(['delete', 'web', '--yes', '--json']);
    expect(d.code, d.stderr + d.stdout).toBe(0);
    expect(fake.instances.size).toBe(0);
  }, 90_000);
});
