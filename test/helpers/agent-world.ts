/**
 * One built agent for a test file: a temp dir with a fleet PKI, the agent started from it (as
 * nobody when root), and an operator client; made in beforeAll, gone in afterAll (every agent the
 * file started is stopped, the dir removed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startAgent, stopAllAgents, type AgentProcess, type StartAgentOptions } from './agent.js';
import { rawAgentClient, type RawClients } from './grpc.js';
import { makePki, type Pki } from './pki.js';

/** Filled in by beforeAll: read its fields inside tests and hooks, not at import time. */
export interface AgentWorld {
  dir: string;
  pki: Pki;
  agent: AgentProcess;
  /** The operator's client of `agent`. */
  op: RawClients;
}

/**
 * Registers the file's beforeAll/afterAll. `options` gives the agent's start options beyond its
 * cert dir (and may prepare files in the dir first).
 */
export function useAgentWorld(prefix: string, options: (w: Pick<AgentWorld, 'dir' | 'pki'>) => Partial<StartAgentOptions> = () => ({})): AgentWorld {
  const w = {} as AgentWorld;
  beforeAll(async () => {
    w.dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    w.pki = await makePki(w.dir);
    w.agent = await startAgent({ certsDir: w.pki.agent.dir, ...options(w) });
    w.op = rawAgentClient(w.agent.address, w.pki.clients.operator.dir);
  });
  afterAll(async () => {
    w.op?.close();
    await stopAllAgents();
    if (w.dir) rmSync(w.dir, { recursive: true, force: true });
  });
  return w;
}
