/**
 * The linode and vultr providers against their fake APIs on loopback: create/list/paginate/
 * delete, auth, rate limits, faults, and the rule that nothing untagged or foreign is touched.
 * Both sides share one clock sped up 100x, so windows and Retry-After pass quickly.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LinodeProvider } from '../../cli/providers/linode.js';
import { scaledClock } from '../../cli/providers/pacer.js';
import { fleetTag, type Provider } from '../../cli/providers/types.js';
import { VultrProvider } from '../../cli/providers/vultr.js';
import type { FakeCloud } from '../helpers/fake-cloud.js';
import { FakeLinode } from '../helpers/fake-linode.js';
import { FakeVultr } from '../helpers/fake-vultr.js';

const TOKEN = 'a'.repeat(8) + 'b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8';

const clouds = [
  {
    name: 'linode',
    fake: (clock = scaledClock(100)) => new FakeLinode({ token: TOKEN, clock }),
    provider: (url: string, token: string, clock = scaledClock(100)) => new LinodeProvider({ baseUrl: url, token, clock }),
  },
  {
    name: 'vultr',
    fake: (clock = scaledClock(100)) => new FakeVultr({ token: TOKEN, clock }),
    provider: (url: string, token: string, clock = scaledClock(100)) => new VultrProvider({ baseUrl: url, token, clock }),
  },
] as const;

let fakes: FakeCloud[] = [];
afterEach(async () => {
  await Promise.all(fakes.map((f) => f.stop()));
  fakes = [];
});

describe.each(clouds)('$name provider against its fake API', (cloud) => {
  async function world(): Promise<{ fake: FakeCloud; p: Provider }> {
    const clock = scaledClock(100);
    const fake = await cloud.fake(clock).start();
    fakes.push(fake);
    return { fake, p: cloud.provider(fake.url, TOKEN, clock) };
  }

  it('creates tagged instances with base64 user data, lists them across pages, gets and deletes them', async () => {
    const { fake, p } = await world();
    const made = await Promise.all(
      Array.from({ length: 130 }, (_, i) => p.create({ fleet: 'web', label: `gaxx-web-${i}`, userData: `#cloud-config\nhostname: h${i}\n` })),
    );
    expect(new Set(made.map((m) => m.id)).size).toBe(130);
    await fake.settled();
    const listed = await p.list('web');
    expect(listed.map((i) => i.id).sort()).toEqual(made.map((m) => m.id).sort());
    expect(listed.every((i) => i.tags.includes(fleetTag('web')) && i.ipv4 === '127.0.0.1' && i.status === 'running')).toBe(true);
    // More than one page was needed (page size 100).
    expect(fake.requests.filter((r) => r.method === 'GET' && /instances$/.test(r.path)).length).toBeGreaterThan(1);
    const stored = fake.instances.get(made[7]?.id as string);
    expect(stored?.userData).toBe('#cloud-config\nhostname: h7\n');
    expect(stored?.tags).toEqual([fleetTag('web')]);
    expect((await p.get(made[7]?.id as string))?.label).toBe('gaxx-web-7');
    expect(await p.destroy('web', made[7]?.id as string)).toBe('deleted');
    expect(await p.get(made[7]?.id as string)).toBeUndefined();
    expect(await p.destroy('web', made[7]?.id as string)).toBe('gone');
    expect((await p.list('web')).length).toBe(129);
  });

  it('never lists or destroys an untagged or foreign instance, even one named like the fleet', async () => {
    const { fake, p } = await world();
    const untagged = fake.seed({ label: 'gaxx-web-0', tags: [] });
    const foreign = fake.seed({ label: 'gaxx-web-1', tags: [fleetTag('web2'), 'web'] });
    const mine = await p.create({ fleet: 'web', label: 'gaxx-web-2' });
    expect((await p.list('web')).map((i) => i.id)).toEqual([mine.id]);
    expect(await p.destroy('web', untagged.id)).toBe('refused');
    expect(await p.destroy('web', foreign.id)).toBe('refused');
    expect(fake.instances.has(untagged.id) && fake.instances.has(foreign.id)).toBe(true);
    expect(fake.requests.some((r) => r.method === 'DELETE')).toBe(false);
    expect(await p.destroy('web', mine.id)).toBe('deleted');
  });

  it('takes only real IP addresses from the API: an option or a line of its own is no address', async () => {
    const { fake, p } = await world();
    const tags = [fleetTag('web')];
    const bad = ['-oProxyCommand=touch /tmp/gaxx-pwned', '127.0.0.1\n@cert-authority * ssh-ed25519 AAAA', 'host.example', '::1'];
    const seeded = bad.map((ipv4, i) => fake.seed({ label: `gaxx-web-${i}`, tags, ipv4 }));
    const good = fake.seed({ label: 'gaxx-web-9', tags, ipv4: '127.0.0.9' });
    const listed = new Map((await p.list('web')).map((i) => [i.id, i]));
    for (const s of seeded) expect(listed.get(s.id)?.ipv4, s.ipv4).toBeUndefined();
    expect(listed.get(good.id)?.ipv4).toBe('127.0.0.9');
    expect((await p.get(seeded[0]?.id as string))?.ipv4).toBeUndefined();
  });

  it('a bad token is UNAUTHENTICATED and is not retried; the right one works', async () => {
    const { fake } = await world();
    const bad = cloud.provider(fake.url, 'wrong-token');
    await expect(bad.list('web')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(fake.requests.filter((r) => r.status === 401).length).toBe(1);
    const none = cloud.provider(fake.url, '');
    await expect(none.list('web')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(cloud.provider(fake.url, TOKEN).list('web')).resolves.toEqual([]);
  });

  it('rides out a short 429 storm and 500s by retrying; a long storm ends RESOURCE_EXHAUSTED', async () => {
    const { fake, p } = await world();
    fake.faults.storm429 = 3;
    fake.faults.fail500 = 2;
    const made = await p.create({ fleet: 'web', label: 'gaxx-web-0' });
    expect(fake.instances.has(made.id)).toBe(true);
    expect(fake.instances.size).toBe(1);
    fake.faults.storm429 = 1_000;
    await expect(p.list('web')).rejects.toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
    fake.faults.storm429 = 0;
    fake.faults.fail500 = 1_000;
    await expect(p.list('web')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    fake.faults.fail500 = 0;
    expect((await p.list('web')).length).toBe(1);
  });

  it('malformed JSON is UNAVAILABLE, not a crash', async () => {
    const { fake, p } = await world();
    fake.faults.malformedJson = 1;
    await expect(p.list('web')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(p.list('web')).resolves.toEqual([]);
  });

  it('an instance that never becomes ready is listed without an address', async () => {
    const { fake, p } = await world();
    fake.faults.neverReady = true;
    const made = await p.create({ fleet: 'web', label: 'gaxx-web-0' });
    const got = await p.get(made.id);
    expect(got?.status).toBe('provisioning');
    expect(got?.ipv4).toBeUndefined();
  });

  it('gives hourly prices from the API, undefined for an unknown type', async () => {
    const { p } = await world();
    const price = await p.pricePerHour(cloud.name === 'linode' ? 'g6-nanode-1' : 'vc2-1c-1gb');
    expect(price).toBeGreaterThan(0);
    expect(await p.pricePerHour('no-such-type')).toBeUndefined();
  });
});

describe('linode specifics', () => {
  it('paces creations to 20 per window: 45 creations draw no 429 from the fake', async () => {
    const clock = scaledClock(100);
    const fake = await new FakeLinode({ token: TOKEN, clock }).start();
    fakes.push(fake);
    const p = new LinodeProvider({ baseUrl: fake.url, token: TOKEN, clock });
    await Promise.all(Array.from({ length: 45 }, (_, i) => p.create({ fleet: 'big', label: `gaxx-big-${i}` })));
    expect(fake.instances.size).toBe(45);
    expect(fake.requests.filter((r) => r.status === 429).length).toBe(0);
  });

  it('an invalid label is FAILED_PRECONDITION (the provider refused it, not a usage error)', async () => {
    const clock = scaledClock(100);
    const fake = await new FakeLinode({ token: TOKEN, clock }).start();
    fakes.push(fake);
    const p = new LinodeProvider({ baseUrl: fake.url, token: TOKEN, clock });
    await expect(p.create({ fleet: 'web', label: 'x' })).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', details: { status: 400 } });
    expect(fake.instances.size).toBe(0);
  });
});
