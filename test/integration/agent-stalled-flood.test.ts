// A task on the agent's host holding connections that never finish their TLS handshake, from
// 127.0.0.1, the address an operator on the same host calls from (tasks share the host's
// network), on the built agent (run `npm run build` first) over real mTLS: whether its
// connections send nothing, part of a record header, a whole ClientHello and then nothing, or a
// byte at a time, and however many it opens again as the agent closes them, an operator's
// Health and Exec calls, each on a connection of its own, are served; so they are while the
// operator already holds all but one of the address's sessions, none of which the flood closes.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { execCollect, rawAgentClient, unary } from '../helpers/grpc.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { STALL_KINDS, stalledFloodInChild, type StallKind } from '../helpers/stalled-flood.js';

/** The production per-address cap; a handshake deadline the tests never reach, so only the agent's closing them makes room. */
const PER_ADDRESS = 32;
const GUARDS = { maxConnectionsPerAddress: PER_ADDRESS, handshakeTimeoutMs: 120_000 };
/** Each test's bound (the agent, the flood and the calls share a loaded test host), and its flood's, within it. */
const TEST_MS = 180_000;
const FLOOD_MS = 120_000;

let dir: string;
let pki: Pki;
let agent: AgentProcess;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-stalled-flood-'));
  pki = await makePki(dir);
});
afterAll(async () => {
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});
// An agent of its own for each test: a test's connections (a client of a failed call may still
// hold one) leave nothing in the next one's way.
beforeEach(async () => {
  agent = await startAgent({ certsDir: pki.agent.dir, args: ['--guards', JSON.stringify(GUARDS)] });
});
afterEach(async () => {
  await agent.stop();
});

/** The operator's calls, each on a fresh connection (a new handshake while the flood runs): Health.Check, then Exec of `echo reached`. */
async function operatorCalls(tag: string): Promise<{ health: string; exec: string }> {
  // Made again when it fails UNAVAILABLE, as docs/agent-hardening.md says a caller may have to:
  // on a loaded machine a flood can close a caller's connection mid-handshake now and then. Not
  // locked out is: served within a few tries (each a new connection), not refused for good.
  let last = { health: '', exec: '' };
  for (let attempt = 0; attempt < 5; attempt++) {
    const c = rawAgentClient(agent.address, pki.clients.operator.dir);
    try {
      const h = await unary<object, { status: string }>((req, md, opts, cb) => c.health.Check(req, md, opts, cb), {});
      const health = h.ok ? h.value.status : `failed ${h.status} ${h.details}`;
      const e = h.ok ? await execCollect(c.agent, { taskId: `flood-${tag}`, argv: ['echo', 'reached'] }) : undefined;
      last = { health, exec: !e ? 'not tried' : e.error ? `failed ${e.error.status} ${e.error.gaxxCode}` : e.stdout };
      const unavailable = (!h.ok && h.status === 14) || e?.error?.status === 14;
      if (!unavailable) return last;
    } finally {
      c.close();
    }
  }
  return last;
}

/** An operator session from 127.0.0.1 the agent kept: its first HTTP/2 frame (SETTINGS) arrived. */
function session(): Promise<{ socket: TLSSocket; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    const read = (f: string) => readFileSync(join(pki.clients.operator.dir, f));
    const opts = {
      host: '127.0.0.1',
      port: agent.port,
      ca: read('ca.pem'),
      cert: read('cert.pem'),
      key: read('key.pem'),
      servername: 'localhost',
      ALPNProtocols: ['h2'],
    };
    const socket = tlsConnect(opts as ConnectionOptions);
    let closed = false;
    socket.on('error', () => undefined);
    socket.once('close', () => {
      closed = true;
      reject(new Error('the agent closed an operator session before it was kept'));
    });
    socket.once('data', () => resolve({ socket, closed: () => closed }));
  });
}

/**
 * Floods of each kind: 40 connections, as in the report (more than the cap: the agent closes
 * some all the time, the flood opens them again), and 100 (more than the address may hold in
 * its handshake at once, twice the cap).
 */
const FLOODS: Array<[StallKind, number]> = STALL_KINDS.flatMap((kind): Array<[StallKind, number]> => [
  [kind, 40],
  [kind, 100],
]);

describe('connections from 127.0.0.1 that never finish a handshake', () => {
  it.each(FLOODS)(
    'do not lock out an operator calling from there (%s, %i connections)',
    async (kind, connections) => {
      const f = stalledFloodInChild({ port: agent.port, kind, connections, maxOpens: 1_000_000, maxDurationMs: FLOOD_MS });
      try {
        await f.full;
        for (let i = 0; i < 3; i++) expect(await operatorCalls(`${kind}-${connections}-${i}`)).toEqual({ health: 'SERVING', exec: 'reached\n' });
      } finally {
        await f.stop();
      }
    },
    TEST_MS,
  );

  it(
    "close none of the address's sessions, and leave the operator room for one more though it holds all the others",
    async () => {
      const held = [];
      for (let i = 0; i < PER_ADDRESS - 1; i++) held.push(await session());
      const f = stalledFloodInChild({ port: agent.port, kind: 'header', connections: 40, maxOpens: 1_000_000, maxDurationMs: FLOOD_MS });
      try {
        await f.full;
        expect(await operatorCalls('beside-sessions')).toEqual({ health: 'SERVING', exec: 'reached\n' });
        expect(held.filter((s) => s.closed())).toEqual([]);
      } finally {
        await f.stop();
        for (const s of held) s.socket.destroy();
      }
    },
    TEST_MS,
  );
});
