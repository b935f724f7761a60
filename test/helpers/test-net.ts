/**
 * Network plumbing for isolated test hosts: one bridge per test process, with a /24 from the
 * benchmark-testing range 198.18.0.0/15 (never routed anywhere, so it exists only between this
 * machine and the namespaces made here), and one network namespace per host on that bridge.
 *
 * A process claims a slot (0..511, one /24 each) with an O_EXCL lock file holding its pid; a slot
 * whose owner died (a crashed test run) is swept first: the processes left in its namespaces are
 * ended, its namespaces and bridge deleted. So a crash never breaks the next run.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { threadId } from 'node:worker_threads';
import { alive } from './procs.js';

const run = promisify(execFile);
const LOCK_DIR = '/tmp/gaxx-test-net';
const SLOTS = 512;

/** One process's share of the test network. */
export interface NetSlot {
  index: number;
  bridge: string;
  /** The machine's address on the bridge: what the hosts see as the controller. */
  gateway: string;
  /** The address of host number `n` (2..254). */
  hostAddress(n: number): string;
  netnsName(n: number): string;
  vethName(n: number): string;
  /** The name prefix of host `n`'s temp dir: the slot's sweep removes what a dead owner left. */
  hostDirPrefix(n: number): string;
}

/** Runs `ip ARGS`; rejects with its stderr. */
export async function ip(...args: string[]): Promise<string> {
  const { stdout } = await run('ip', args, { maxBuffer: 1 << 20 });
  return stdout;
}

function slotPrefix(k: number): string {
  return k < 256 ? `198.18.${k}` : `198.19.${k - 256}`;
}

function makeSlot(k: number): NetSlot {
  return {
    index: k,
    bridge: `gxb${k}`,
    gateway: `${slotPrefix(k)}.1`,
    hostAddress: (n) => `${slotPrefix(k)}.${n}`,
    netnsName: (n) => `gaxx-th${k}-${n}`,
    vethName: (n) => `gxv${k}h${n}`,
    hostDirPrefix: (n) => `gxh-s${k}-${n}-`,
  };
}

/** Ends what a dead owner left in slot `k`: processes in its namespaces, the namespaces, the bridge. */
async function sweepSlot(k: number): Promise<void> {
  const slot = makeSlot(k);
  const list = await ip('netns', 'list').catch(() => '');
  const prefix = `gaxx-th${k}-`;
  for (const line of list.split('\n')) {
    const ns = line.split(/\s+/)[0] ?? '';
    if (!ns.startsWith(prefix)) continue;
    const pids = await ip('netns', 'pids', ns).catch(() => '');
    for (const p of pids.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await ip('netns', 'del', ns).catch(() => undefined);
  }
  await ip('link', 'del', slot.bridge).catch(() => undefined);
  // The hosts' temp dirs (overlay upper and work dirs) of an owner that died before its stop().
  for (const name of readdirSync(tmpdir())) if (name.startsWith(`gxh-s${k}-`)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
}

function lockPath(k: number): string {
  return `${LOCK_DIR}/${k}`;
}

function tryLock(k: number): boolean {
  try {
    writeFileSync(lockPath(k), `${process.pid} ${threadId}\n`, { flag: 'wx' });
    return true;
  } catch {
    return false;
  }
}

function ownerOf(k: number): number {
  try {
    return Number(readFileSync(lockPath(k), 'utf8').split(' ')[0]);
  } catch {
    return 0;
  }
}

let current: Promise<NetSlot> | undefined;

/**
 * Sweeps every slot whose owner process is gone (a crashed run): ends what is left in its
 * namespaces, deletes them and its bridge, frees the slot. Returns the slots swept.
 */
export async function sweepStaleSlots(): Promise<number[]> {
  mkdirSync(LOCK_DIR, { recursive: true, mode: 0o755 });
  const swept: number[] = [];
  for (const name of readdirSync(LOCK_DIR)) {
    const k = Number(name);
    if (!Number.isInteger(k) || k < 0 || k >= SLOTS) continue;
    const owner = ownerOf(k);
    if (owner > 0 && alive(owner)) continue;
    await sweepSlot(k);
    rmSync(lockPath(k), { force: true });
    swept.push(k);
  }
  return swept;
}

async function claim(): Promise<NetSlot> {
  await sweepStaleSlots();
  const start = (process.pid * 7 + threadId) % SLOTS;
  for (let i = 0; i < SLOTS; i++) {
    const k = (start + i) % SLOTS;
    if (!tryLock(k)) {
      const owner = ownerOf(k);
      if (owner > 0 && alive(owner)) continue;
      await sweepSlot(k);
      rmSync(lockPath(k), { force: true });
      if (!tryLock(k)) continue;
    }
    const slot = makeSlot(k);
    // A bridge left by an owner that died between lock and sweep would make `add` fail.
    await ip('link', 'del', slot.bridge).catch(() => undefined);
    await ip('link', 'add', slot.bridge, 'type', 'bridge');
    await ip('addr', 'add', `${slot.gateway}/24`, 'dev', slot.bridge);
    await ip('link', 'set', slot.bridge, 'up');
    return slot;
  }
  throw new Error('no free test network slot in 198.18.0.0/15');
}

/** This process's slot, claimed (and its bridge made) on first use. */
export function netSlot(): Promise<NetSlot> {
  current ??= claim();
  return current;
}

/** Deletes this process's bridge and frees its slot (after every host was stopped). */
export async function releaseNetSlot(): Promise<void> {
  if (!current) return;
  const slot = await current.catch(() => undefined);
  current = undefined;
  if (!slot) return;
  await sweepSlot(slot.index);
  rmSync(lockPath(slot.index), { force: true });
}

/**
 * Makes namespace `n` of the slot with a veth on the bridge. Returns the host's address and the
 * shell lines that configure the namespace side (run by the host's init, inside the namespace,
 * to save process starts on a loaded machine).
 */
export async function addHostNetns(slot: NetSlot, n: number): Promise<{ address: string; setup: string }> {
  const ns = slot.netnsName(n);
  const veth = slot.vethName(n);
  const address = slot.hostAddress(n);
  await ip('netns', 'del', ns).catch(() => undefined);
  await ip('netns', 'add', ns);
  await ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
  await ip('link', 'set', veth, 'master', slot.bridge, 'up');
  const setup = [`ip addr add ${address}/24 dev eth0`, 'ip link set eth0 up', 'ip link set lo up', `ip route add default via ${slot.gateway}`].join('\n');
  return { address, setup };
}
