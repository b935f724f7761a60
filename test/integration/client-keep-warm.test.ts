// AgentClient's keepWarmMs against the real built agent over real mTLS: an agent closes a
// connection with no call on it after its idleTimeoutMs guard; a client kept warm (the scheduler
// daemon's) opens it again at once while its last call is recent, and any other leaves it closed.
// What the agent accepted is read from its metrics (gaxx_agent_connections_total counts the
// metrics endpoint's connections too: each scrape makes one, which is taken off).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCertDir, type CertBundle } from '../../certs/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { agentConnections, type WatchedAgent } from '../helpers/metrics.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { eventually } from '../helpers/poll.js';

/**
 * Agents here close a connection with no call for 2 s: room for a call and a scrape to be seen
 * before the first idle close, on a loaded machine too.
 */
const IDLE_MS = 2000;

let dir: string;
let pki: Pki;
let creds: CertBundle;
const clients: AgentClient[] = [];

type Watched = WatchedAgent<AgentProcess>;

/** The gRPC connections `w`'s agent accepted and has open (its scrapes taken off). */
function connections(w: Watched): Promise<{ accepted: number; open: number }> {
  return agentConnections(w, pki.clients.monitor.dir);
}

function client(agent: AgentProcess, keepWarmMs?: number): AgentClient {
  const c = AgentClient.connect({ address: agent.address }, creds, keepWarmMs === undefined ? {} : { keepWarmMs });
  clients.push(c);
  return c;
}

async function watchedAgent(): Promise<Watched> {
  return { agent: await startAgent({ certsDir: pki.agent.dir, args: ['--guards', JSON.stringify({ idleTimeoutMs: IDLE_MS })] }), scrapes: 0 };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-keep-warm-'));
  pki = await makePki(dir);
  creds = loadCertDir(pki.clients.scheduler.dir);
});
afterAll(async () => {
  for (const c of clients) c.close();
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe('a client kept warm (keepWarmMs)', () => {
  it('opens the connection again each time the agent closes it for idleness, with no call made', async () => {
    const w = await watchedAgent();
    const c = client(w.agent, 60_000);
    expect(await c.health()).toBe('SERVING');
    expect((await connections(w)).accepted).toBe(1);
    // Two idle closes, each followed by a connection the client opened by itself.
    expect(await eventually(async () => (await connections(w)).accepted >= 3, 60_000, 200)).toBe(true);
    expect(await c.health()).toBe('SERVING');
  });

  it('is left closed by a client without keepWarmMs, and by one whose last call is older than it', async () => {
    const sentinel = await watchedAgent();
    const quiet = await watchedAgent();
    const plain = client(quiet.agent);
    const stale = client(quiet.agent, 1);
    expect(await plain.health()).toBe('SERVING');
    expect(await stale.health()).toBe('SERVING');
    expect(await client(sentinel.agent, 60_000).health()).toBe('SERVING');
    expect((await connections(quiet)).accepted).toBe(2);
    // Once the client kept warm on the other agent (same idle time) has reopened twice, both of
    // these were closed at least once: neither was opened again.
    expect(await eventually(async () => (await connections(sentinel)).accepted >= 3, 60_000, 200)).toBe(true);
    expect(await connections(quiet)).toEqual({ accepted: 2, open: 0 });
    // A call opens it as before.
    expect(await plain.health()).toBe('SERVING');
    expect((await connections(quiet)).accepted).toBe(3);
  });
});
