/**
 * What the dashboard leaves to whoever may connect without the token: a bounded number of
 * connections (one past them closes the oldest that never showed the token, never one that did)
 * and a few seconds to send a request. Real sockets on loopback.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadCertDir, secureContextOptions, type CertBundle } from '../../certs/index.js';
import { Dashboard } from '../../scheduler/ui/dashboard.js';
import { MAX_CONNECTIONS, REQUEST_TIMEOUT_MS } from '../../scheduler/ui/http.js';
import { makePki, type Pki } from '../helpers/pki.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
// No target is ever connected to: the credentials are never read.
const creds = {} as CertBundle;

let dash: Dashboard | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await dash?.stop();
  dash = undefined;
});

const start = async (): Promise<Dashboard> =>
  (dash = await Dashboard.start({ listen: '127.0.0.1:0', creds, targets: async () => [], scrapeIntervalMs: 1000, log: quiet }));

interface Raw {
  socket: Socket;
  closed: () => boolean;
  data: () => string;
}

/** A connection that sends `first` (nothing when undefined); `closed` once the server ends it. */
async function raw(port: number, first?: string): Promise<Raw> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let closed = false;
  let data = '';
  socket.on('data', (b: Buffer) => (data += b.toString()));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  if (first !== undefined) socket.write(first);
  return { socket, closed: () => closed, data: () => data };
}

/** GET `path` on a fresh connection: its status. */
function status(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard connections', () => {
  it('keeps at most MAX_CONNECTIONS: connections without the token make room from the oldest; the event stream that showed it stays', async () => {
    const d = await start();
    const stream = await raw(d.port, `GET /events?token=${d.token} HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\n\r\n`);
    await vi.waitFor(() => expect(stream.data()).toContain('event: agents'), { timeout: 20_000 });
    // A flood of connections that never send anything, as many as the whole allowance.
    const idle: Raw[] = [];
    for (let i = 0; i < MAX_CONNECTIONS; i++) idle.push(await raw(d.port));
    // The stream and MAX_CONNECTIONS - 1 of them fit: the oldest idle one was closed for the last.
    await vi.waitFor(() => expect(idle[0]?.closed()).toBe(true), { timeout: 20_000 });
    expect(idle.filter((c) => c.closed()).length).toBe(1);
    // A request with the token still gets in (another idle one makes room), and the stream is open.
    expect(await status(d.port, `/api/state?token=${d.token}`)).toBe(200);
    expect(idle[1]?.closed()).toBe(true);
    expect(stream.closed()).toBe(false);
    expect(idle.filter((c) => !c.closed()).length).toBe(MAX_CONNECTIONS - 2);
  });

  it('closes a connection that sends no request, or only part of one, within REQUEST_TIMEOUT_MS', async () => {
    const d = await start();
    const stream = await raw(d.port, `GET /events?token=${d.token} HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\n\r\n`);
    const silent = await raw(d.port);
    const partial = await raw(d.port, `GET /api/state?token=${d.token} HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\n`);
    // Node's defaults kept both 60 to 90 s.
    await vi.waitFor(() => expect([silent.closed(), partial.closed()]).toEqual([true, true]), { timeout: REQUEST_TIMEOUT_MS + 15_000, interval: 200 });
    // An event stream's request was whole: it stays open as long as the page does.
    expect(stream.data()).toContain('event: agents');
    expect(stream.closed()).toBe(false);
  }, 60_000);
});

describe('dashboard connections over TLS (client certificates from the fleet CA)', () => {
  let dir: string;
  let pki: Pki;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gxui-tls-'));
    pki = await makePki(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps at most MAX_CONNECTIONS, counted from before the handshake: idle ones past it and ones that never begin one make room from the oldest; a request with the token still gets its answer', async () => {
    const server = loadCertDir(pki.agent.dir);
    const d = (dash = await Dashboard.start({
      listen: '127.0.0.1:0',
      tls: secureContextOptions(server),
      creds,
      targets: async () => [],
      scrapeIntervalMs: 1000,
      log: quiet,
    }));
    const client = loadCertDir(pki.clients.operator.dir);
    const tlsOpts = { host: '127.0.0.1', port: d.port, cert: client.certPem, key: client.keyPem, ca: client.caPem, servername: 'localhost' };
    // Idle connections that passed the handshake (a fleet client certificate) and send nothing, beyond the bound...
    const idle: Raw[] = [];
    for (let i = 0; i < MAX_CONNECTIONS + 8; i++) {
      const socket = tlsConnect(tlsOpts);
      sockets.push(socket);
      let closed = false;
      socket.on('close', () => (closed = true));
      socket.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      idle.push({ socket, closed: () => closed, data: () => '' });
    }
    // The oldest idle ones were closed for the newest: MAX_CONNECTIONS stay.
    await vi.waitFor(() => expect(idle.filter((c) => c.closed()).length).toBe(8), { timeout: 20_000 });
    expect(idle.slice(0, 8).every((c) => c.closed())).toBe(true);
    // Then more connections that never begin a handshake than the server takes at all
    // (maxConnections, 2 * MAX_CONNECTIONS): uncounted, they filled it until their handshake
    // timeout and every new connection was refused.
    const silent: Raw[] = [];
    for (let i = 0; i < 2 * MAX_CONNECTIONS + 8; i++) silent.push(await raw(d.port));
    // Each made room from the oldest: every idle one, then the oldest silent ones; MAX_CONNECTIONS stay.
    await vi.waitFor(() => expect(idle.every((c) => c.closed())).toBe(true), { timeout: 20_000 });
    await vi.waitFor(() => expect(silent.filter((c) => !c.closed()).length).toBe(MAX_CONNECTIONS), { timeout: 20_000 });
    expect(silent.slice(-MAX_CONNECTIONS).every((c) => !c.closed())).toBe(true);
    const answer = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ ...tlsOpts, path: `/api/state?token=${d.token}`, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(answer).toBe(200);
  }, 60_000);
});
