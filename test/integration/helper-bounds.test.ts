// The test helpers that wait on a server must end on their own, whatever the server does: one
// that never answers must not keep them (and the test awaiting them) waiting. The flood helper
// (guard tests, bench:agent) ends when told to; httpsGet (metrics and profiling GETs) gives up;
// the stalled-connection flood ends when told to, or by itself after its bound.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createSecureServer, constants as h2, type Http2SecureServer, type ServerHttp2Stream } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flood, type FloodOptions } from '../helpers/flood.js';
import { httpsGet, NoAnswerError } from '../helpers/metrics.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { stalledFlood } from '../helpers/stalled-flood.js';

let dir: string;
let pki: Pki;
let server: Http2SecureServer;
/** Streams the server holds (never answered), and those the client cancelled. */
const held = new Set<ServerHttp2Stream>();
let cancelled = 0;
const waiters: Array<() => void> = [];
const changed = () => waiters.splice(0).forEach((w) => w());
/** Resolves once `ok()` holds, checked at every stream the server sees open or close. */
const until = (ok: () => boolean) => new Promise<void>((r) => (ok() ? r() : waiters.push(() => void until(ok).then(r))));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-flood-'));
  pki = await makePki(dir);
  server = createSecureServer({ key: readFileSync(join(pki.agent.dir, 'key.pem')), cert: readFileSync(join(pki.agent.dir, 'cert.pem')) });
  server.on('stream', (stream) => {
    held.add(stream);
    stream.on('error', () => undefined);
    stream.on('close', () => {
      held.delete(stream);
      if (stream.rstCode === h2.NGHTTP2_CANCEL) cancelled++;
      changed();
    });
    changed();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  for (const s of held) s.close();
  await new Promise((r) => server?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function options(over: Partial<FloodOptions>): FloodOptions {
  const c = pki.clients.operator.dir;
  return {
    port: (server.address() as AddressInfo).port,
    localAddress: '127.0.0.1',
    caPem: readFileSync(join(pki.agent.dir, 'ca.pem')),
    certPem: readFileSync(join(c, 'cert.pem')),
    keyPem: readFileSync(join(c, 'key.pem')),
    durationMs: 600_000,
    ...over,
  };
}

describe('flood helper', () => {
  it('ends when stopped, with the calls a silent server holds ended too', async () => {
    const stop = new AbortController();
    const running = flood(options({ connections: 2, concurrency: 4, signal: stop.signal }));
    await until(() => held.size >= 8);
    stop.abort();
    const r = await running;
    expect(r.calls).toBeGreaterThanOrEqual(8);
    expect(Object.values(r.outcomes).reduce((a, b) => a + b, 0)).toBe(r.calls);
    expect(r.outcomes['0']).toBeUndefined();
    await until(() => held.size === 0);
  });

  it('cancels a call left unanswered for callTimeoutMs and counts it as a timeout', async () => {
    const stop = new AbortController();
    const before = cancelled;
    const running = flood(options({ connections: 1, concurrency: 2, callTimeoutMs: 200, signal: stop.signal }));
    await until(() => cancelled - before >= 2);
    stop.abort();
    const r = await running;
    expect(r.outcomes.timeout ?? 0).toBeGreaterThanOrEqual(2);
  });
});

describe('stalled-connection flood helper', () => {
  it('holds its connections against a server that never closes them, and ends by itself at its bound or when stopped', async () => {
    const held = new Set<Socket>();
    let heard = 0;
    const server = createNetServer((s) => {
      held.add(s);
      s.on('data', () => (heard += 1));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const bounded = await stalledFlood({ port, kind: 'trickle', connections: 3, maxOpens: 10, maxDurationMs: 500, trickleEveryMs: 1 });
      expect(await bounded.ended).toEqual({ opened: 3, cut: 0 });
      expect(heard).toBeGreaterThan(0);
      const stopped = await stalledFlood({ port, kind: 'header', connections: 2, maxOpens: 10, maxDurationMs: 600_000 });
      expect(stopped.stop()).toEqual({ opened: 2, cut: 0 });
      expect(await stopped.ended).toEqual({ opened: 2, cut: 0 });
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('httpsGet', () => {
  it('gives up on a server that takes the request and never answers, with an error that says so', async () => {
    let seen!: () => void;
    const got = new Promise<void>((r) => (seen = r));
    const silent = createHttpsServer({ key: readFileSync(join(pki.agent.dir, 'key.pem')), cert: readFileSync(join(pki.agent.dir, 'cert.pem')) }, () => seen());
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as AddressInfo).port;
      const err = await httpsGet({ port, path: '/metrics', certDir: pki.clients.operator.dir, timeoutMs: 300 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NoAnswerError);
      expect((err as Error).message).toMatch(/GET \/metrics on port \d+: no answer in 300 ms/);
      // It did reach the server (the silence was the server's).
      await got;
    } finally {
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
  });
});
