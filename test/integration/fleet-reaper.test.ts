// The daemon's fleet reaper on a real redis-server: fleets past their TTL or budget are reaped
// once (by one holder of the lock), their limits cleared; a failed reap is tried again; fleets
// within their limits and unreadable limits are never acted on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRedis,
  FleetReaper,
  fleetCost,
  getFleetLimits,
  holdFleet,
  limitedFleets,
  limitReached,
  redisSettingsFromUrl,
  setFleetLimits,
  waitReady,
} from '../../scheduler/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

let redis: TestRedis;
let conn: ReturnType<typeof createRedis>;

beforeAll(async () => {
  redis = await startRedis();
  conn = createRedis(redisSettingsFromUrl(redis.url), 'producer');
  await waitReady(conn);
});

afterAll(async () => {
  conn?.disconnect();
  await redis?.destroy();
});

describe('fleet limits', () => {
  it('cost is price per hour times hours since the start; TTL before budget', () => {
    const l = { pricePerHour: 2, since: 0, currency: 'USD', expiresAt: 10 * 3_600_000, budget: 5 };
    expect(fleetCost(l, 3_600_000)).toBe(2);
    expect(limitReached(l, 3_600_000)).toBeUndefined();
    expect(limitReached(l, 3 * 3_600_000)).toBe('budget');
    expect(limitReached({ ...l, budget: undefined }, 10 * 3_600_000)).toBe('ttl');
  });

  it('refuses bad limits (INVALID_ARGUMENT)', async () => {
    await expect(setFleetLimits(conn, 'x', { since: Date.now(), budget: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await getFleetLimits(conn, 'x')).toBeUndefined();
  });

  it('reaps fleets past TTL or budget once, keeps the others, retries a failed reap', async () => {
    const now = Date.now();
    await setFleetLimits(conn, 'old', { since: now - 10_000, expiresAt: now - 1 });
    await setFleetLimits(conn, 'costly', { since: now - 3_600_000, pricePerHour: 3, budget: 2.5 });
    await setFleetLimits(conn, 'fine', { since: now, expiresAt: now + 3_600_000, pricePerHour: 1, budget: 100 });
    await setFleetLimits(conn, 'flaky', { since: now - 10_000, expiresAt: now - 1 });
    await conn.set('{gaxx}:fleet-limits:garbled', '{not json');
    await conn.sadd('{gaxx}:fleet-limits', 'garbled');
    const reaped: string[] = [];
    let flakyCalls = 0;
    const reap = async (fleet: string, reason: string): Promise<void> => {
      if (fleet === 'flaky' && ++flakyCalls === 1) throw new Error('provider down');
      reaped.push(`${fleet}:${reason}`);
    };
    // Two daemons' reapers at once (each runs a round on start, then one more): the lock and a
    // second look after taking it let only one of them reap each fleet.
    const a = FleetReaper.start({ redis: conn, reap, intervalMs: 3_600_000 });
    const b = FleetReaper.start({ redis: conn, reap, intervalMs: 3_600_000 });
    await Promise.all([a.tick(), b.tick()]);
    expect(reaped.sort()).toEqual(['costly:budget', 'flaky:ttl', 'old:ttl']);
    expect(flakyCalls).toBe(2);
    expect(await limitedFleets(conn)).toEqual(['fine', 'garbled']);
    await a.stop();
    await b.stop();
  });

  it('leaves a fleet alone while its spawn holds it, refuses a second hold (FAILED_PRECONDITION), reaps it once released', async () => {
    await setFleetLimits(conn, 'spawning', { since: Date.now() - 10_000, expiresAt: Date.now() - 1 });
    const release = await holdFleet(conn, 'spawning');
    await expect(holdFleet(conn, 'spawning')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    const reaped: string[] = [];
    const r = FleetReaper.start({ redis: conn, reap: async (fleet) => void reaped.push(fleet), intervalMs: 3_600_000 });
    try {
      await r.tick();
      expect(reaped).toEqual([]);
      expect(await limitedFleets(conn)).toContain('spawning');
      await release();
      await r.tick();
      expect(reaped).toEqual(['spawning']);
      expect(await limitedFleets(conn)).not.toContain('spawning');
      // Released: a new hold works again.
      await (
        await holdFleet(conn, 'spawning')
      )();
    } finally {
      await r.stop();
    }
  });
});
