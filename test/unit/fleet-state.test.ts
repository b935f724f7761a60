import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../cli/config.js';
import { providerFor } from '../../cli/fleet/provider-for.js';
import { missingIndices } from '../../cli/fleet/spawn-flow.js';
import { parseSecretsEnv, providerToken, readSecretsEnv, Secret } from '../../cli/secrets.js';
import { assertFleetName, fleetSinceOf, FleetStore, listFleets, readFleet, removeFleet } from '../../cli/state.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-state-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('fleet state', () => {
  it('records intent before anything else and writes every change 0600, with no temp file left', async () => {
    const store = FleetStore.create(dir, { fleet: 'web', provider: 'linode', count: 2, minCount: 1, settings: { region: 'us-east' } });
    await store.setHost(0, { status: 'intent' });
    expect(readFleet(dir, 'web')?.hosts).toMatchObject([{ name: 'gaxx-web-0', index: 0, status: 'intent' }]);
    await Promise.all([
      store.setHost(1, { status: 'intent' }),
      store.setHost(0, { status: 'created', id: '7' }),
      store.setHost(1, { status: 'created', id: '8' }),
    ]);
    const back = readFleet(dir, 'web');
    expect(back?.hosts.map((h) => [h.index, h.status, h.id])).toEqual([
      [0, 'created', '7'],
      [1, 'created', '8'],
    ]);
    expect(statSync(join(dir, 'web.json')).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['web.json']);
    expect(listFleets(dir).map((f) => f.fleet)).toEqual(['web']);
    removeFleet(dir, 'web');
    expect(readFleet(dir, 'web')).toBeUndefined();
  });

  it("an ssh inventory host another fleet of this home took is refused to a second fleet (its bootstrap would replace the first one's agent)", async () => {
    const config = loadConfig({ argv: [], env: { GAXX_HOME: dir }, readFile: () => undefined });
    const inventory = join(dir, 'inventory.yml');
    writeFileSync(inventory, 'hosts:\n  - host: 10.9.8.7\n  - host: 10.9.8.6\n');
    const a = FleetStore.create(config.paths.fleetsDir, { fleet: 'a', provider: 'ssh', count: 1, minCount: 1, settings: { inventory } });
    await a.setHost(0, { status: 'ready', id: '10.9.8.7:22', ipv4: '10.9.8.7' });
    const b = await providerFor(config, 'ssh', { inventory });
    await expect(b.create({ fleet: 'b', index: 0, label: 'gaxx-b-0' })).rejects.toMatchObject({
      code: 'ALREADY_EXISTS',
      message: expect.stringContaining('inventory host 10.9.8.7:22 already belongs to fleet a'),
    });
    await expect(b.create({ fleet: 'b', index: 1, label: 'gaxx-b-1' })).resolves.toMatchObject({ id: '10.9.8.6:22' });
    // Fleet a itself (a --fill of it) still has its host.
    const again = await providerFor(config, 'ssh', { state: readFleet(config.paths.fleetsDir, 'a') });
    await expect(again.create({ fleet: 'a', index: 0, label: 'gaxx-a-0' })).resolves.toMatchObject({ id: '10.9.8.7:22' });
  });

  it('two spawns of different fleets from one inventory at once: a host goes to the first that takes it; a deleted fleet frees its hosts', async () => {
    const config = loadConfig({ argv: [], env: { GAXX_HOME: dir }, readFile: () => undefined });
    const inventory = join(dir, 'inventory.yml');
    writeFileSync(inventory, 'hosts:\n  - host: 10.9.8.7\n');
    // Each spawn records its fleet (the host's intent) before it takes a host; neither state names it yet.
    for (const fleet of ['c', 'd'])
      await FleetStore.create(config.paths.fleetsDir, { fleet, provider: 'ssh', count: 1, minCount: 1, settings: { inventory } }).setHost(0, {
        status: 'intent',
      });
    const [c, d] = await Promise.all([providerFor(config, 'ssh', { inventory }), providerFor(config, 'ssh', { inventory })]);
    await expect(c.create({ fleet: 'c', index: 0, label: 'gaxx-c-0' })).resolves.toMatchObject({ id: '10.9.8.7:22' });
    await expect(d.create({ fleet: 'd', index: 0, label: 'gaxx-d-0' })).rejects.toMatchObject({
      code: 'ALREADY_EXISTS',
      message: expect.stringContaining('inventory host 10.9.8.7:22 already belongs to fleet c'),
    });
    // Fleet c deleted (its host forgotten, its state removed): the host is free.
    expect(await c.destroy('c', '10.9.8.7:22')).toBe('deleted');
    await expect(d.create({ fleet: 'd', index: 0, label: 'gaxx-d-0' })).resolves.toMatchObject({ id: '10.9.8.7:22' });
    removeFleet(config.paths.fleetsDir, 'd');
    const e = await providerFor(config, 'ssh', { inventory });
    await FleetStore.create(config.paths.fleetsDir, { fleet: 'e', provider: 'ssh', count: 1, minCount: 1, settings: { inventory } }).setHost(0, {
      status: 'intent',
    });
    // A claim whose fleet is gone (deleted without releasing it, by a gaxx before this one) holds nothing.
    await expect(e.create({ fleet: 'e', index: 0, label: 'gaxx-e-0' })).resolves.toMatchObject({ id: '10.9.8.7:22' });
  });

  it('a damaged state file is CONFIG_INVALID naming the dot-path', () => {
    writeFileSync(join(dir, 'web.json'), JSON.stringify({ version: 1, fleet: 'web', provider: 'linode', count: 'two' }));
    expect(() => readFleet(dir, 'web')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    writeFileSync(join(dir, 'web.json'), '{"version": 1,');
    expect(() => readFleet(dir, 'web')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('refuses fleet names that cannot be a tag or a path', () => {
    for (const bad of ['', 'Web', '../x', 'a'.repeat(40), '-x', 'a b'])
      expect(() => assertFleetName(bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => assertFleetName('web-2')).not.toThrow();
  });

  it("the fleet's agents get its creation time as --fleet-since: kept by the state, new for a fleet made again", async () => {
    const first = FleetStore.create(dir, { fleet: 'web', provider: 'local', count: 1, minCount: 1, settings: {} }, new Date('2026-01-01T00:00:00.123Z'));
    await first.setHost(0, { status: 'intent' });
    expect(fleetSinceOf(first.state)).toBe(Date.parse('2026-01-01T00:00:00.123Z'));
    // A --fill reads the state back: the same time.
    expect(fleetSinceOf(readFleet(dir, 'web') as NonNullable<ReturnType<typeof readFleet>>)).toBe(Date.parse('2026-01-01T00:00:00.123Z'));
    removeFleet(dir, 'web');
    const again = FleetStore.create(dir, { fleet: 'web', provider: 'local', count: 1, minCount: 1, settings: {} });
    expect(fleetSinceOf(again.state)).toBeGreaterThan(Date.parse('2026-01-01T00:00:00.123Z'));
    expect(() => fleetSinceOf({ fleet: 'web', createdAt: 'yesterday' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('missing indices are those without a created or ready host', () => {
    const h = (index: number, status: 'intent' | 'created' | 'ready' | 'failed') => ({ name: `gaxx-w-${index}`, index, status, createdAt: '' });
    expect(missingIndices([h(0, 'ready'), h(1, 'intent'), h(2, 'failed'), h(3, 'created')], 5)).toEqual([1, 2, 4]);
  });
});

describe('secrets', () => {
  it('parses KEY=VALUE lines with comments, export and quotes, and never prints a value', () => {
    const m = parseSecretsEnv('# tokens\nexport LINODE_TOKEN="abc def"\n\nVULTR_API_KEY=xyz\n');
    expect(m.get('LINODE_TOKEN')?.reveal()).toBe('abc def');
    expect(m.get('VULTR_API_KEY')?.reveal()).toBe('xyz');
    const s = new Secret('hunter2-secret');
    expect(`${s}`).toBe('[redacted]');
    expect(JSON.stringify({ s })).not.toContain('hunter2');
    expect(inspect({ s })).not.toContain('hunter2');
    expect(() => parseSecretsEnv('not a line')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('refuses secrets.env readable by group or others, then reads it at 0600', () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'secrets.env'), 'LINODE_TOKEN=t0k\n', { mode: 0o640 });
    chmodSync(join(dir, 'secrets.env'), 0o640);
    expect(() => readSecretsEnv(dir)).toThrow(expect.objectContaining({ code: 'INSECURE_FILE_MODE' }));
    // The environment does not hide an unsafe file.
    expect(() => providerToken(dir, 'LINODE_TOKEN', new Secret('from-env'))).toThrow(expect.objectContaining({ code: 'INSECURE_FILE_MODE' }));
    chmodSync(join(dir, 'secrets.env'), 0o600);
    expect(providerToken(dir, 'LINODE_TOKEN', undefined)?.reveal()).toBe('t0k');
    expect(providerToken(dir, 'LINODE_TOKEN', new Secret('from-env'))?.reveal()).toBe('from-env');
    expect(readFileSync(join(dir, 'secrets.env'), 'utf8')).toContain('t0k');
  });

  it('a missing secrets.env is no secrets', () => {
    expect(readSecretsEnv(join(dir, 'nope')).size).toBe(0);
  });
});

describe('provider config', () => {
  it('takes base URLs from the file and GAXX_*_URL, tokens only from the environment, redacted', () => {
    const file = JSON.stringify({ providers: { linode: { url: 'http://127.0.0.1:1', region: 'eu-west' } } });
    const c = loadConfig({
      argv: [],
      env: { GAXX_HOME: dir, GAXX_VULTR_URL: 'http://127.0.0.1:2', LINODE_TOKEN: 'secret-linode' },
      readFile: (p) => (p.endsWith('config.json') ? file : undefined),
    });
    expect(c.providers.linode).toMatchObject({ url: 'http://127.0.0.1:1', region: 'eu-west' });
    expect(c.providers.vultr?.url).toBe('http://127.0.0.1:2');
    expect(c.providers.linode?.envToken?.reveal()).toBe('secret-linode');
    expect(JSON.stringify(c)).not.toContain('secret-linode');
    expect(() => loadConfig({ argv: [], env: { GAXX_HOME: dir }, readFile: () => JSON.stringify({ providers: { linode: { token: 'x' } } }) })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});
