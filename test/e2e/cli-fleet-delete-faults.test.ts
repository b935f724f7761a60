// gaxx delete when something fails on the way (the fake Linode API behind a fault proxy, Redis
// unreachable, an instance untagged by hand): what is destroyed anyway, what is kept, what is
// reported and with which exit code.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KnownHosts } from '../../cli/ssh/known-hosts.js';
import { FleetStore } from '../../cli/state.js';
import { exitCodeFor } from '../../proto/index.js';
import { runGaxx, type CliRun } from '../helpers/cli.js';
import { FakeLinode } from '../helpers/fake-linode.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const TOKEN = 'e2e-0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978';
const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ5b2dhcnR5c3VwZXJzZWNyZXRrZXlmb3J0ZXN0cw';
let home: string;
let fake: FakeLinode;
let proxy: FaultProxy;
let redis: TestRedis;

const fleetsDir = (): string => join(home, 'state', 'fleets');
const knownHostsFile = (): string => join(home, 'config', 'ssh', 'known_hosts');
const gaxx = (args: string[], env: Record<string, string> = {}): Promise<CliRun> =>
  runGaxx(args, { home, env: { GAXX_LINODE_URL: proxy.url, LINODE_TOKEN: TOKEN, GAXX_REDIS_URL: redis.url, ...env } });

/** A fleet `web` of `n` hosts with their tagged instances at the fake, and a known_hosts entry each. */
async function seedFleet(n: number, status: 'created' | 'ready'): Promise<string[]> {
  const store = FleetStore.create(fleetsDir(), { fleet: 'web', provider: 'linode', count: n, minCount: n, settings: {} });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const inst = fake.seed({ label: `gaxx-web-${i}`, tags: ['gaxx-fleet:web'], ipv4: `127.0.0.${10 + i}` });
    ids.push(inst.id);
    await store.setHost(i, { status, id: inst.id, ipv4: inst.ipv4, agent: `${inst.ipv4 ?? ''}:8088` });
    new KnownHosts(knownHostsFile()).add(inst.ipv4 as string, 22, HOST_KEY, 'web');
  }
  return ids;
}

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.destroy();
});

beforeEach(async () => {
  home = mkdtempSync(join(tmpdir(), 'gaxx-e2e-delete-faults-'));
  const init = await runGaxx(['init', '--name', 'alice'], { home });
  expect(init.code, init.stderr).toBe(0);
  fake = await new FakeLinode({ token: TOKEN }).start();
  proxy = await new FaultProxy(() => fake.url).start();
});

afterEach(async () => {
  await proxy.stop();
  await fake.stop();
  rmSync(home, { recursive: true, force: true });
});

describe('gaxx delete under faults', () => {
  it('with Redis unreachable: destroys the instances, removes known_hosts and state, reports the unregistration apart (REDIS_UNAVAILABLE), no ioredis noise', async () => {
    await seedFleet(2, 'ready');
    const r = await gaxx(['delete', 'web', '--yes', '--json'], { GAXX_REDIS_URL: 'redis://127.0.0.1:1' });
    expect(r.code, r.stderr + r.stdout).toBe(exitCodeFor('REDIS_UNAVAILABLE'));
    const out = JSON.parse(r.stdout) as { destroyed: number; knownHostsRemoved: number; unregisterFailed: { code: string } };
    expect(out.destroyed).toBe(2);
    expect(out.knownHostsRemoved).toBe(2);
    expect(out.unregisterFailed.code).toBe('REDIS_UNAVAILABLE');
    expect(r.stderr).not.toContain('ioredis');
    expect(fake.instances.size).toBe(0);
    expect(existsSync(join(fleetsDir(), 'web.json'))).toBe(false);
    expect(readFileSync(knownHostsFile(), 'utf8').trim()).toBe('');
    // The human report names what to run once Redis is back; that run finishes the job.
    await seedFleet(1, 'ready');
    const human = await gaxx(['delete', 'web', '--yes'], { GAXX_REDIS_URL: 'redis://127.0.0.1:1' });
    expect(human.code).toBe(exitCodeFor('REDIS_UNAVAILABLE'));
    expect(human.stdout).toContain('gaxx delete web --provider linode --yes');
    expect(human.stderr).not.toContain('ioredis');
    const again = await gaxx(['delete', 'web', '--provider', 'linode', '--yes', '--json']);
    expect(again.code, again.stderr + again.stdout).toBe(0);
  });

  it('an instance whose fleet tag was removed is not destroyed but listed with its id, label and address; the rest is deleted; FAILED_PRECONDITION', async () => {
    const ids = await seedFleet(2, 'created');
    const untagged = fake.instances.get(ids[1] as string);
    if (untagged) untagged.tags = ['kept-by-hand'];
    const r = await gaxx(['delete', 'web', '--yes', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(exitCodeFor('FAILED_PRECONDITION'));
    const out = JSON.parse(r.stdout) as { destroyed: number; refused: number; refusedInstances: unknown[] };
    expect(out.destroyed).toBe(1);
    expect(out.refusedInstances).toEqual([{ id: ids[1], label: 'gaxx-web-1', address: '127.0.0.11' }]);
    expect([...fake.instances.keys()]).toEqual([ids[1]]);
    expect(existsSync(join(fleetsDir(), 'web.json'))).toBe(false);
    const human = await gaxx(['delete', 'web', '--provider', 'linode', '--yes']);
    expect(human.code, human.stderr).toBe(0);
  });

  it("a provider that cannot list the fleet's tagged instances: the recorded ones are destroyed, the failure reported, the state kept", async () => {
    await seedFleet(2, 'created');
    const lost = fake.seed({ label: 'gaxx-web-2', tags: ['gaxx-fleet:web'] });
    const isList = (q: { method: string; path: string }): boolean => q.method === 'GET' && q.path === '/v4/linode/instances';
    proxy.rule = (q) => (isList(q) ? { kind: 'answer', status: 400 } : { kind: 'pass' });
    const r = await gaxx(['delete', 'web', '--yes', '--json']);
    // A provider's 400 is its refusal, not a usage error of the command line.
    expect(r.code, r.stderr + r.stdout).toBe(exitCodeFor('FAILED_PRECONDITION'));
    const out = JSON.parse(r.stdout) as { destroyed: number; listFailed: { code: string } };
    expect(out.destroyed).toBe(2);
    expect(out.listFailed.code).toBe('FAILED_PRECONDITION');
    expect([...fake.instances.keys()]).toEqual([lost.id]);
    expect(existsSync(join(fleetsDir(), 'web.json'))).toBe(true);
    proxy.rule = () => ({ kind: 'pass' });
    const again = await gaxx(['delete', 'web', '--yes', '--json']);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    expect(fake.instances.size).toBe(0);
  });

  it('a delete of more than 10 instances prints no listener warning', async () => {
    for (let i = 0; i < 30; i++) fake.seed({ label: `gaxx-big-${i}`, tags: ['gaxx-fleet:big'] });
    const r = await gaxx(['delete', 'big', '--provider', 'linode', '--yes', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect((JSON.parse(r.stdout) as { destroyed: number }).destroyed).toBe(30);
    expect(r.stderr).not.toMatch(/MaxListenersExceeded|memory leak/);
  });
});
