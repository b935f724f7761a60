// The daemon's fleet reaper on a real redis-server: fleets past their TTL or budget are reaped
// once (by one holder of the lock), their limits cleared; a failed reap is tried again; fleets
// within their limits and unreadable limits are never acted on. The operator's own record of a
// fleet's limits (here a map, in `gaxx scheduler` the fleet's state file) decides: a record in
// Redis alone, or one that differs from the operator's, deletes nothing and is logged.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FleetReaper } from '../../scheduler/daemon/reaper.js';
import { fleetCost, FleetLimitsSchema, getFleetLimits, limitedFleets, limitReached, type FleetLimits } from '../../scheduler/queue/fleet-limits.js';
import { createRedis, holdFleet, redisSettingsFromUrl, setFleetLimits, waitReady } from '../../scheduler/index.js';
import { eventually } from '../helpers/poll.js';
import { redisAndConnection, type TestRedis } from '../helpers/redis.js';
import type { Redis } from 'ioredis';

let redis: TestRedis;
let conn: Redis;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => ({ redis, conn, close } = await redisAndConnection()));

afterAll(() => close?.());

/** The operator's own records of fleets' limits (what a fleet's state file holds). */
const own = new Map<string, FleetLimits>();
const ownLimits = (fleet: string): FleetLimits | undefined => own.get(fleet);

/** Sets a fleet's limits the way `gaxx spawn --ttl/--budget` does: in the operator's record and in Redis. */
async function spawnedWith(fleet: string, limits: Parameters<typeof setFleetLimits>[2]): Promise<void> {
  own.set(fleet, FleetLimitsSchema.parse(limits));
  await setFleetLimits(conn, fleet, limits);
}

/** A logger that keeps what it is given. */
function memoryLog() {
  const lines: Array<{ level: string; msg?: string } & Record<string, unknown>> = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, msg, ...obj });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

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
    await spawnedWith('old', { since: now - 10_000, expiresAt: now - 1 });
    await spawnedWith('costly', { since: now - 3_600_000, pricePerHour: 3, budget: 2.5 });
    await spawnedWith('fine', { since: now, expiresAt: now + 3_600_000, pricePerHour: 1, budget: 100 });
    await spawnedWith('flaky', { since: now - 10_000, expiresAt: now - 1 });
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
    const a = FleetReaper.start({ redis: conn, reap, ownLimits, intervalMs: 3_600_000 });
    const b = FleetReaper.start({ redis: conn, reap, ownLimits, intervalMs: 3_600_000 });
    await Promise.all([a.tick(), b.tick()]);
    expect(reaped.sort()).toEqual(['costly:budget', 'flaky:ttl', 'old:ttl']);
    expect(flakyCalls).toBe(2);
    expect(await limitedFleets(conn)).toEqual(['fine', 'garbled']);
    await a.stop();
    await b.stop();
  });

  it('leaves a fleet alone while its spawn holds it, refuses a second hold (FAILED_PRECONDITION), reaps it once released', async () => {
    await spawnedWith('spawning', { since: Date.now() - 10_000, expiresAt: Date.now() - 1 });
    const release = await holdFleet(conn, 'spawning');
    await expect(holdFleet(conn, 'spawning')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    const reaped: string[] = [];
    const r = FleetReaper.start({ redis: conn, reap: async (fleet) => void reaped.push(fleet), ownLimits, intervalMs: 3_600_000 });
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

  it('a reap that does not end holds its own fleet only: the others are reaped, its lock is short-lived and refreshed, not held for minutes', async () => {
    const now = Date.now();
    await spawnedWith('stuck', { since: now - 10_000, expiresAt: now - 1 });
    await spawnedWith('next', { since: now - 10_000, expiresAt: now - 1 });
    const reaped: string[] = [];
    let unstick: () => void = () => undefined;
    const stuck = new Promise<void>((r) => (unstick = r));
    const r = FleetReaper.start({
      redis: conn,
      // A provider that does not answer for the first fleet (a DELETE that hangs).
      reap: async (fleet) => {
        if (fleet === 'stuck') await stuck;
        reaped.push(fleet);
      },
      ownLimits,
      intervalMs: 200,
      lockMs: 1500,
    });
    try {
      await vi.waitFor(() => expect(reaped).toEqual(['next']), { timeout: 20_000, interval: 50 });
      // Rounds go on meanwhile (another fleet coming due is seen); the stuck one is not started twice.
      await spawnedWith('later', { since: now - 10_000, expiresAt: now - 1 });
      await vi.waitFor(() => expect(reaped).toEqual(['next', 'later']), { timeout: 20_000, interval: 50 });
      // Its lock lives lockMs at most from its last refresh: a daemon killed now frees it that soon.
      const ttl = await conn.pttl('{gaxx}:fleet-reaping:stuck');
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(1500);
      unstick();
      await vi.waitFor(() => expect(reaped).toEqual(['next', 'later', 'stuck']), { timeout: 20_000, interval: 50 });
      await vi.waitFor(async () => expect(await conn.exists('{gaxx}:fleet-reaping:stuck')).toBe(0), { timeout: 20_000, interval: 50 });
    } finally {
      unstick();
      await r.stop();
    }
  });

  it("a hold's refresh never extends a hold that expired and was taken by another holder", async () => {
    // The first holder on a connection of its own, whose commands are counted: its refreshes.
    const c1 = createRedis(redisSettingsFromUrl(redis.url), 'producer');
    await waitReady(c1);
    let sent = 0;
    const send = c1.sendCommand.bind(c1) as (...args: unknown[]) => unknown;
    c1.sendCommand = ((...args: unknown[]) => {
      sent++;
      return send(...args);
    }) as typeof c1.sendCommand;
    try {
      const first = await holdFleet(c1, 'reheld', 300);
      // Its hold lapsed (a holder stalled past its lifetime) and another took the fleet.
      await conn.del('{gaxx}:fleet-reaping:reheld');
      const second = await holdFleet(conn, 'reheld', 60_000);
      const token = await conn.get('{gaxx}:fleet-reaping:reheld');
      // Three refreshes of the first holder later, the second's hold is as it was.
      const after = sent;
      expect(await eventually(() => sent >= after + 3, 20_000)).toBe(true);
      expect(await conn.get('{gaxx}:fleet-reaping:reheld')).toBe(token);
      expect(await conn.pttl('{gaxx}:fleet-reaping:reheld')).toBeGreaterThan(30_000);
      await first();
      expect(await conn.get('{gaxx}:fleet-reaping:reheld')).toBe(token);
      await second();
      expect(await conn.exists('{gaxx}:fleet-reaping:reheld')).toBe(0);
    } finally {
      c1.disconnect();
    }
  });

  it("deletes nothing on Redis's word alone: a fleet without limits of its own, or whose limits differ, is refused and logged once", async () => {
    const now = Date.now();
    // A Redis writer's records: an expired TTL for a fleet spawned without limits, an expired
    // one for a fleet whose own TTL is an hour away, a reached budget at a made-up price.
    await conn.set('{gaxx}:fleet-limits:plain', JSON.stringify({ expiresAt: 1, since: 1, currency: 'USD', pricePerHour: 0 }));
    await conn.sadd('{gaxx}:fleet-limits', 'plain');
    await spawnedWith('hour', { since: now, expiresAt: now + 3_600_000 });
    await setFleetLimits(conn, 'hour', { since: now, expiresAt: 1 });
    await spawnedWith('cheap', { since: now, pricePerHour: 0.01, budget: 100 });
    await setFleetLimits(conn, 'cheap', { since: 1, pricePerHour: 1000, budget: 0.0001 });
    // A name no fleet has, whose own record cannot be read: the others are still checked.
    await conn.set('{gaxx}:fleet-limits:../x', JSON.stringify({ expiresAt: 1, since: 1 }));
    await conn.sadd('{gaxx}:fleet-limits', '../x');
    // And a fleet due by its own record, as Redis says too: deleted.
    await spawnedWith('due', { since: now - 10_000, expiresAt: now - 1 });
    const reaped: string[] = [];
    const log = memoryLog();
    const r = FleetReaper.start({
      redis: conn,
      reap: async (fleet) => void reaped.push(fleet),
      ownLimits: (fleet) => {
        if (fleet.includes('/')) throw new Error(`no fleet is called ${fleet}`);
        return ownLimits(fleet);
      },
      intervalMs: 3_600_000,
      log,
    });
    try {
      await r.tick();
      await r.tick();
      expect(reaped).toEqual(['due']);
      expect(await limitedFleets(conn)).toEqual(expect.arrayContaining(['plain', 'hour', 'cheap', '../x']));
      const warned = log.lines.filter((l) => l.level === 'warn').map((l) => l.fleet);
      // Once each, though two rounds ran.
      expect(warned.sort()).toEqual(['../x', 'cheap', 'hour', 'plain']);
      expect(log.lines.find((l) => l.fleet === 'plain')?.why).toMatch(/no TTL or budget/);
      expect(log.lines.find((l) => l.fleet === 'hour')?.why).toMatch(/differ/);
    } finally {
      await r.stop();
    }
  });
});
