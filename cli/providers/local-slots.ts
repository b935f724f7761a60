/**
 * The local provider's address slots: instance slot N is loopback address 127.0.0.<2+N>. Every
 * local agent this user starts listens on the same loopback, whichever installation (GAXX_HOME)
 * started it, so a slot is claimed in one dir for all of them (slotsDir: in the user's shared run
 * dir, not in an installation's state dir): creates running at once, in this process or in any
 * other gaxx of this user, never pick the same address. A claim names the gaxx making the agent
 * and, once started, the agent: it is held while either runs, and taken over once both are gone
 * (an agent killed, or stopped without its fleet being deleted). Destroy releases it.
 */
import { chmodSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  asProcessMark,
  fileAccessError,
  GaxxError,
  makeDirs,
  processLives,
  processMark,
  releaseClaim,
  rewriteClaim,
  takeClaim,
  type ProcessMark,
} from '../../proto/index.js';
import { checkOwnDir } from '../local-dirs.js';

/** Loopback addresses handed out: 127.0.0.<FIRST_HOST + index>. */
const FIRST_HOST = 2;
/** How many agents a local fleet (all of this user's local fleets) may have at once. */
export const MAX_INSTANCES = 250;

/** The loopback address of instance `index`: 127.0.0.2, 127.0.0.3, ... */
export function localAddress(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_INSTANCES) {
    throw new GaxxError('USAGE', `a local fleet has at most ${MAX_INSTANCES} agents (index ${index})`);
  }
  return `127.0.0.${FIRST_HOST + index}`;
}

/** A slot's claim: who holds it (`<installation>/<instance id>`), the gaxx making it, its agent once started. */
interface SlotClaim {
  by: string;
  maker: ProcessMark;
  agent?: ProcessMark;
}

function parseClaim(text: string): SlotClaim | undefined {
  try {
    const c = JSON.parse(text) as Record<string, unknown>;
    const maker = asProcessMark(c.maker);
    const agent = asProcessMark(c.agent);
    return typeof c.by === 'string' && maker ? { by: c.by, maker, ...(agent ? { agent } : {}) } : undefined;
  } catch {
    return undefined;
  }
}

/** Held while the gaxx making the agent, or the agent, runs; a claim that does not parse is stale. */
function claimHeld(text: string): boolean {
  const c = parseClaim(text);
  return c !== undefined && (processLives(c.maker) || (c.agent !== undefined && processLives(c.agent)));
}

const slotPath = (dir: string, index: number): string => join(dir, String(index));

/**
 * The slots dir in `userRunDir` (the user's run dir, shared by all installations), made 0700 and
 * refused (INSECURE_FILE_MODE) unless it and the run dir are this user's and only it may write
 * them: whoever could write there could take every address, or release another's.
 */
export function prepareSlotsDir(userRunDir: string): string {
  const dir = join(userRunDir, 'slots');
  try {
    makeDirs(userRunDir, { mode: 0o711 });
    checkOwnDir(userRunDir, 'the local fleet run dir');
    chmodSync(userRunDir, 0o711);
    makeDirs(dir, { mode: 0o700 });
  } catch (e) {
    throw fileAccessError(e) ?? e;
  }
  checkOwnDir(dir, 'the local fleet address claims dir', 0o077);
  return dir;
}

/**
 * Claims for `by` the first slot, not in `skip`, that no local agent of this user holds or is
 * starting on, and on whose address nothing else listens on any of `ports` (another user's local
 * fleet, or any other program). The slot is the provider's own: a fleet's host index says
 * nothing about which addresses other fleets use. RESOURCE_EXHAUSTED when none is left.
 */
export async function claimSlot(dir: string, ports: number[], by: string, skip: ReadonlySet<number>): Promise<number> {
  const text = JSON.stringify({ by, maker: processMark() } satisfies SlotClaim);
  for (let i = 0; i < MAX_INSTANCES; i++) {
    if (skip.has(i) || !takeClaim(slotPath(dir, i), text, claimHeld).taken) continue;
    if (await portsFree(localAddress(i), ports)) return i;
    releaseSlot(dir, i, by);
  }
  throw new GaxxError(
    'RESOURCE_EXHAUSTED',
    `no free loopback address for a local agent on port ${ports[0]} (${localAddress(0)}-${localAddress(MAX_INSTANCES - 1)} are taken)`,
  );
}

/** Records in `by`'s claim of slot `index` the agent started there (pid `agentPid`): it holds the slot from now on. */
export function recordSlotAgent(dir: string, index: number, by: string, agentPid: number): void {
  const path = slotPath(dir, index);
  const c = parseClaim(readClaim(path));
  const agent = processMark(agentPid);
  // An agent already gone holds nothing (and a mark without its start would hold the pid's next process).
  if (c?.by !== by || agent.start === undefined) return;
  rewriteClaim(path, JSON.stringify({ ...c, agent } satisfies SlotClaim));
}

/** Gives slot `index` back if `by` holds it (its instance is destroyed, or never started); another's claim stays. */
export function releaseSlot(dir: string, index: number, by: string): void {
  releaseClaim(slotPath(dir, index), (held) => parseClaim(held)?.by === by);
}

function readClaim(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
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
