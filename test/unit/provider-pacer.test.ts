import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY, Pacer, parseRetryAfter, retryDelay } from '../../cli/providers/pacer.js';
import { describeLinodeError } from '../../cli/providers/linode.js';
import { describeVultrError } from '../../cli/providers/vultr.js';
import { ManualClock } from '../helpers/manual-clock.js';

describe('Pacer (sliding-window token bucket)', () => {
  it('lets `limit` requests start at once, then one more only a window after one finished', async () => {
    const clock = new ManualClock();
    const pacer = new Pacer({ limit: 20, windowMs: 15_000 }, clock);
    const started: number[] = [];
    const runs = Array.from({ length: 45 }, () => pacer.run(async () => void started.push(clock.now())));
    await clock.advance(0);
    expect(started.length).toBe(20);
    await clock.advance(14_999);
    expect(started.length).toBe(20);
    await clock.advance(1);
    expect(started.length).toBe(40);
    await clock.advance(15_000);
    await Promise.all(runs);
    expect(started.length).toBe(45);
    // No 15 s window ever holds more than 20 starts.
    for (const t of started) expect(started.filter((s) => s >= t && s < t + 15_000).length).toBeLessThanOrEqual(20);
  });

  it('returns a token only after the request finished, so slow requests never bunch up at the server', async () => {
    const clock = new ManualClock();
    const pacer = new Pacer({ limit: 1, windowMs: 1_000 }, clock);
    let release!: () => void;
    const first = pacer.run(() => new Promise<void>((r) => (release = r)));
    let secondAt = -1;
    const second = pacer.run(async () => void (secondAt = clock.now()));
    await clock.advance(5_000);
    expect(secondAt).toBe(-1);
    release();
    await first;
    await clock.advance(999);
    expect(secondAt).toBe(-1);
    await clock.advance(1);
    await second;
    expect(secondAt).toBe(6_000);
  });

  it('a waiter whose signal aborts leaves the queue with CANCELLED', async () => {
    const clock = new ManualClock();
    const pacer = new Pacer({ limit: 1, windowMs: 1_000 }, clock);
    await pacer.run(async () => undefined);
    const ac = new AbortController();
    const waiting = pacer.run(async () => 'ran', ac.signal);
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'CANCELLED' });
    await clock.advance(1_000);
    await expect(pacer.run(async () => 'ran')).resolves.toBe('ran');
  });

  it('refuses a limit below one', () => {
    expect(() => new Pacer({ limit: 0, windowMs: 1 }, new ManualClock())).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('retry delays', () => {
  it('honours Retry-After, capped at the policy maximum', () => {
    expect(retryDelay(1, DEFAULT_RETRY, 7_000)).toBe(7_000);
    expect(retryDelay(1, DEFAULT_RETRY, 3_600_000)).toBe(DEFAULT_RETRY.maxDelayMs);
  });

  it('backs off exponentially with jitter within [ceiling/2, ceiling]', () => {
    const p = { attempts: 8, baseDelayMs: 100, maxDelayMs: 1_000 };
    expect(retryDelay(1, p, undefined, () => 0)).toBe(50);
    expect(retryDelay(3, p, undefined, () => 1)).toBe(400);
    expect(retryDelay(10, p, undefined, () => 1)).toBe(1_000);
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('15')).toBe(15_000);
    expect(parseRetryAfter(new Date(61_000).toUTCString(), 1_000)).toBe(60_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('provider error bodies', () => {
  it('Linode {errors:[{reason, field}]} becomes one line naming each field', () => {
    expect(describeLinodeError({ errors: [{ reason: 'Invalid region', field: 'region' }, { reason: 'Too many' }] })).toBe('region: Invalid region; Too many');
    expect(describeLinodeError({ nope: 1 })).toBeUndefined();
  });

  it('Vultr {error, status} becomes its error text', () => {
    expect(describeVultrError({ error: 'Invalid plan.', status: 400 })).toBe('Invalid plan.');
    expect(describeVultrError('x')).toBeUndefined();
  });
});
