/**
 * The dashboard collects while someone watches: the collector rounds on while wanted and idles
 * (no round scheduled) once not; a request wakes it and, for /metrics and the API, is answered
 * after the fresh round; an open event stream keeps it going.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CertBundle } from '../../certs/index.js';
import { Collector } from '../../scheduler/ui/collector.js';
import { Dashboard } from '../../scheduler/ui/dashboard.js';
import type { MonitorTarget } from '../../scheduler/ui/targets.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
// No target is ever connected to: the credentials are never read.
const creds = {} as CertBundle;

afterEach(() => {
  vi.useRealTimers();
});

/**
 * Calls `call` twice at once: neither settles while what both wait for runs (once `running()`
 * says it started), both do once `release()` ends it.
 */
async function expectBothWait(call: () => Promise<unknown>, running: () => boolean, release: () => void): Promise<void> {
  const settled: string[] = [];
  const first = call().then(() => settled.push('first'));
  const second = call().then(() => settled.push('second'));
  await vi.waitFor(() => expect(running()).toBe(true));
  await new Promise((r) => setImmediate(r));
  expect(settled).toEqual([]);
  release();
  await Promise.all([first, second]);
  expect(settled.sort()).toEqual(['first', 'second']);
}

describe('collector', () => {
  it('schedules no round once nobody wants one, and rounds again at once when woken', async () => {
    vi.useFakeTimers();
    let rounds = 0;
    let wanted = true;
    const c = new Collector({
      creds,
      intervalMs: 1000,
      targets: async (): Promise<MonitorTarget[]> => {
        rounds++;
        return [];
      },
      wanted: () => wanted,
    });
    c.start();
    await vi.waitFor(() => expect(vi.getTimerCount()).toBe(1));
    expect(rounds).toBe(1);
    expect(c.idling).toBe(false);
    // Wanted: the next round comes an interval later.
    wanted = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect(rounds).toBe(2);
    // Not wanted when that round ended: nothing scheduled, however long.
    expect(c.idling).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(rounds).toBe(2);
    // Woken: a round at once, resolved when it ended.
    await c.wake();
    expect(rounds).toBe(3);
    expect(c.idling).toBe(true);
    // Woken while wanted again: rounds go on at the interval.
    wanted = true;
    await c.wake();
    expect(rounds).toBe(4);
    expect(c.idling).toBe(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(rounds).toBe(5);
    // Woken while rounds go on: no extra round.
    await c.wake();
    expect(rounds).toBe(5);
    await c.stop();
  });

  it('has every caller that wakes it while its round runs wait for that round', async () => {
    let release: () => void = () => undefined;
    let rounds = 0;
    const c = new Collector({
      creds,
      intervalMs: 60_000,
      targets: async (): Promise<MonitorTarget[]> => {
        rounds++;
        if (rounds === 1) await new Promise<void>((r) => (release = r));
        return [];
      },
      wanted: () => false,
    });
    // Not wanted at its start: no round until woken.
    c.start();
    expect(c.idling).toBe(true);
    expect(rounds).toBe(0);
    await expectBothWait(
      () => c.wake(),
      () => rounds === 1,
      () => release(),
    );
    expect(rounds).toBe(1);
    await c.stop();
  });
});

describe('dashboard resumed by requests that come together', () => {
  it('has each of them wait for the reads that catch up after the pause', async () => {
    let release: () => void = () => undefined;
    let depths = 0;
    const dash = await Dashboard.start({
      listen: '127.0.0.1:0',
      creds,
      targets: async () => [],
      depth: async () => {
        depths++;
        await new Promise<void>((r) => (release = r));
        return { test: depths };
      },
      scrapeIntervalMs: 5000,
      tickMs: 20,
      watchMs: 60_000,
      log: quiet,
    });
    try {
      // What a request does first (the HTTP side's own order of two requests is not the test's to set).
      const asked = (): Promise<void> => (dash as unknown as { asked(): Promise<void> }).asked();
      // Paused from the start: its first tick found nobody watching.
      await vi.waitFor(() => expect((dash as unknown as { tickIdle: boolean }).tickIdle).toBe(true), { timeout: 30_000, interval: 20 });
      await expectBothWait(
        asked,
        () => depths === 1,
        () => release(),
      );
      expect(dash.snapshot().queue).toEqual({ test: 1 });
    } finally {
      release();
      await dash.stop();
    }
  });
});

function get(port: number, path: string, stream = false): Promise<{ status: number; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      if (stream) return resolve({ status: res.statusCode ?? 0, close: () => req.destroy() });
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, close: () => undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard', () => {
  it('starts paused and pauses when nobody has asked for watchMs; /metrics, the API and an open event stream resume it', async () => {
    let rounds = 0;
    const dash = await Dashboard.start({
      listen: '127.0.0.1:0',
      creds,
      targets: async () => {
        rounds++;
        return [];
      },
      scrapeIntervalMs: 20,
      tickMs: 20,
      watchMs: 100,
      log: quiet,
    });
    try {
      // Started, nobody has asked: no round.
      expect(dash.collector.idling).toBe(true);
      expect(rounds).toBe(0);
      // /metrics: answered after a fresh round, and collection goes on for watchMs, then idles.
      expect((await get(dash.port, '/metrics')).status).toBe(200);
      expect(rounds).toBeGreaterThan(0);
      await vi.waitFor(() => expect(dash.collector.idling).toBe(true), { timeout: 30_000, interval: 20 });
      // The API (with the token) likewise; without it, nothing resumes.
      const before = rounds;
      expect((await get(dash.port, '/api/state')).status).toBe(401);
      expect(rounds).toBe(before);
      expect(dash.collector.idling).toBe(true);
      expect((await get(dash.port, `/api/state?token=${dash.token}`)).status).toBe(200);
      expect(rounds).toBeGreaterThan(before);
      await vi.waitFor(() => expect(dash.collector.idling).toBe(true), { timeout: 30_000, interval: 20 });
      // An open event stream: rounds go on past watchMs while it stays open, then stop.
      const open = rounds;
      const events = await get(dash.port, `/events?token=${dash.token}`, true);
      expect(events.status).toBe(200);
      await vi.waitFor(() => expect(rounds).toBeGreaterThan(open + 10), { timeout: 30_000, interval: 20 });
      expect(dash.collector.idling).toBe(false);
      events.close();
      await vi.waitFor(() => expect(dash.collector.idling).toBe(true), { timeout: 30_000, interval: 20 });
    } finally {
      await dash.stop();
    }
  });
});
