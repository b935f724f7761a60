/**
 * The local provider's address slots: instance slot N is loopback address 127.0.0.<2+N>. A slot
 * is claimed by a file `<stateDir>/slots/<N>` created exclusively, so creates running at once (in
 * this process or in another gaxx) never pick the same address; destroy releases it.
 */
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { GaxxError } from '../../proto/index.js';

/** Loopback addresses handed out: 127.0.0.<FIRST_HOST + index>. */
const FIRST_HOST = 2;
/** How many agents a local fleet (all of this user's local fleets) may have at once. */
export const MAX_INSTANCES = 250;
/** How long a claimed slot without a record counts as a start in progress (then it is stale). */
const CLAIM_STALE_MS = 5 * 60_000;

/** The loopback address of instance `index`: 127.0.0.2, 127.0.0.3, ... */
export function localAddress(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_INSTANCES) {
    throw new GaxxError('USAGE', `a local fleet has at most ${MAX_INSTANCES} agents (index ${index})`);
  }
  return `127.0.0.${FIRST_HOST + index}`;
}

const slotPath = (stateDir: string, index: number): string => join(stateDir, 'slots', String(index));

/**
 * Claims, for instance `id`, the first slot that no local agent of ours holds (`existing`, the
 * recorded ones) or is starting on, and on whose address nothing else listens on any of `ports`
 * (another installation's local fleet, or any other program). The slot is the provider's own: a
 * fleet's host index says nothing about which addresses other fleets use.
 */
export async function claimSlot(stateDir: string, ports: number[], id: string, existing: Array<{ id: string; index: number }>): Promise<number> {
  mkdirSync(join(stateDir, 'slots'), { recursive: true, mode: 0o700 });
  const held = new Set(existing.map((r) => r.index));
  const ids = new Set(existing.map((r) => r.id));
  for (let i = 0; i < MAX_INSTANCES; i++) {
    if (held.has(i) || !takeClaim(slotPath(stateDir, i), id, ids)) continue;
    if (await portsFree(localAddress(i), ports)) return i;
    releaseSlot(stateDir, i);
  }
  throw new GaxxError(
    'RESOURCE_EXHAUSTED',
    `no free loopback address for a local agent on port ${ports[0]} (${localAddress(0)}-${localAddress(MAX_INSTANCES - 1)} are taken)`,
  );
}

/** Gives slot `index` back (its instance is destroyed, or never started). */
export function releaseSlot(stateDir: string, index: number): void {
  rmSync(slotPath(stateDir, index), { force: true });
}

/** Creates the claim file; an existing one is taken over only when it is stale (no record, old). */
function takeClaim(path: string, id: string, ids: Set<string>): boolean {
  try {
    writeFileSync(path, id, { flag: 'wx', mode: 0o600 });
    return true;
  } catch {
    try {
      const owner = readFileSync(path, 'utf8');
      if (ids.has(owner) || Date.now() - statSync(path).mtimeMs < CLAIM_STALE_MS) return false;
      rmSync(path, { force: true });
      writeFileSync(path, id, { flag: 'wx', mode: 0o600 });
      return true;
    } catch {
      return false;
    }
  }
}

/** Whether every non-zero port of `ports` can be bound on `address` right now. */
async function portsFree(address: string, ports: number[]): Promise<boolean> {
  for (const port of ports) if (port !== 0 && !(await canListen(address, port))) return false;
  return true;
}

/** Whether `address:port` can be bound right now (closed again at once). */
function canListen(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: address, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}
