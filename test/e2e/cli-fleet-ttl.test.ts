// A fleet's TTL enforced by `gaxx scheduler` (the built CLI) against the fake Linode API: once
// the TTL passes, the daemon destroys the fleet's tagged instance, unregisters the fleet and
// clears its state; a fleet within its limits is left alone.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetStore } from '../../cli/state.js';
import { limitedFleets, setFleetLimits } from '../../scheduler/queue/fleet-limits.js';
import { createRedis, fleetAgents, redisSettingsFromUrl, registerFleet, waitReady } from '../../scheduler/index.js';
import { runGaxx, spawnGaxx } from '../helpers/cli.js';
import { FakeLinode } from '../helpers/fake-linode.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const TOKEN = 'e2e-0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978';
let home: string;
let redis: TestRedis;
let fake: FakeLinode;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'gxttl-'));
  redis = await startRedis();
  fake = await new FakeLinode({ token: TOKEN }).start();
});

afterAll(async () => {
  await fake?.stop();
  await redis?.destroy();
  rmSync(home, { recursive: true, force: true });
});

describe('fleet TTL', () => {
  it('a 5 s TTL: the scheduler daemon deletes the fleet through the provider; a fleet within its limits stays', { timeout: 180_000 }, async () => {
    const cli = { home, env: { GAXX_REDIS_URL: redis.url, GAXX_LINODE_URL: fake.url, LINODE_TOKEN: TOKEN } };
    const init = await runGaxx(['init', '--name', 'alice'], cli);
    expect(init.code, init.stderr).toBe(0);
    const made = fake.seed({ label: 'gaxx-web-0', tags: ['gaxx-fleet:web'] });
    const store = FleetStore.create(join(home, 'state', 'fleets'), { fleet: 'web', provider: 'linode', count: 1, minCount: 1, settings: {} });
    await store.setHost(0, { status: 'ready', id: made.id, ipv4: '127.0.0.1', pricePerHour: 0.0075 });
    const conn = createRedis(redisSettingsFromUrl(redis.url), 'producer');
    await waitReady(conn);
    try {
      await registerFleet(conn, 'web', [{ host: 'gaxx-web-0', address: '127.0.0.1:1' }]);
      await setFleetLimits(conn, 'web', { since: Date.now(), expiresAt: Date.now() + 5000, pricePerHour: 0.0075 });
      await setFleetLimits(conn, 'keep', { since: Date.now(), expiresAt: Date.now() + 3_600_000, budget: 5 });
      const daemon = spawnGaxx(['scheduler', '--reap-interval', '1s', '--metrics-listen', '127.0.0.1:0'], cli);
      const log = (): string => daemon.stderr();
      try {
        for (let i = 0; i < 1200 && fake.instances.has(made.id); i++) await sleep(100);
        expect(fake.instances.has(made.id), log()).toBe(false);
        for (let i = 0; i < 100 && (await limitedFleets(conn)).includes('web'); i++) await sleep(100);
        expect(await limitedFleets(conn)).toEqual(['keep']);
        expect(await fleetAgents(conn, 'web')).toEqual([]);
        expect(existsSync(join(home, 'state', 'fleets', 'web.json'))).toBe(false);
        expect(log()).toMatch(/"reason":"ttl"/);
      } finally {
        daemon.kill('SIGTERM');
        await daemon.done;
      }
    } finally {
      conn.disconnect();
    }
  });
});
