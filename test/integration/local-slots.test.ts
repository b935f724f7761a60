// The local provider's address claims: one dir for every installation of the user, a claim held
// while the gaxx making its agent or the agent runs, a stale one taken over, released only by its
// holder, an address where something else listens skipped, and a dir others could write refused.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { processMark } from '../../proto/index.js';
import { claimSlot, localAddress, prepareSlotsDir, recordSlotAgent, releaseSlot } from '../../cli/providers/local-slots.js';

let base: string;
let slots: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'gaxx-slots-'));
  chmodSync(base, 0o711);
  slots = prepareSlotsDir(join(base, 'run'));
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

/** A pid no process has any more: a child that has exited. */
const deadPid = (): number => spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid as number;
const claimOf = (index: number) => JSON.parse(readFileSync(join(slots, String(index)), 'utf8')) as { by: string; agent?: { pid: number } };
const none = new Set<number>();

describe('local address claims', () => {
  it('claims made at once by two installations get distinct addresses, each named after its claimant', async () => {
    const got = await Promise.all(['homeA/f-0', 'homeB/f-0', 'homeA/f-1', 'homeB/f-1'].map((by) => claimSlot(slots, [0], by, none)));
    expect(new Set(got).size).toBe(4);
    expect(got.map((i) => claimOf(i).by)).toEqual(['homeA/f-0', 'homeB/f-0', 'homeA/f-1', 'homeB/f-1']);
  });

  it("a release leaves another claimant's claim alone; its own goes", async () => {
    const a = await claimSlot(slots, [0], 'homeA/f-0', none);
    releaseSlot(slots, a, 'homeB/f-0');
    expect(claimOf(a).by).toBe('homeA/f-0');
    expect(await claimSlot(slots, [0], 'homeB/f-0', none)).not.toBe(a);
    releaseSlot(slots, a, 'homeA/f-0');
    expect(existsSync(join(slots, String(a)))).toBe(false);
    expect(await claimSlot(slots, [0], 'homeC/f-0', none)).toBe(a);
  });

  it('a claim is held while its agent runs, after the gaxx that made it is gone; taken over once both are gone', async () => {
    const dead = { pid: deadPid() };
    // Made by a gaxx that is gone, its agent running (this process stands for it).
    writeFileSync(join(slots, '0'), JSON.stringify({ by: 'homeA/f-0', maker: dead, agent: processMark(process.pid) }));
    // Made by a gaxx that is gone, its agent gone too.
    writeFileSync(join(slots, '1'), JSON.stringify({ by: 'homeA/f-1', maker: dead, agent: { pid: deadPid() } }));
    // Made by a gaxx that is gone before it started the agent.
    writeFileSync(join(slots, '2'), JSON.stringify({ by: 'homeA/f-2', maker: dead }));
    // A pid that lives, but is not the process that claimed (it started later): not held.
    writeFileSync(join(slots, '3'), JSON.stringify({ by: 'homeA/f-3', maker: { ...processMark(process.ppid), start: '1' } }));
    // Not a claim at all.
    writeFileSync(join(slots, '4'), 'garbage');
    const got = await Promise.all(['homeB/g-0', 'homeB/g-1', 'homeB/g-2', 'homeB/g-3'].map((by) => claimSlot(slots, [0], by, none)));
    expect(got.sort()).toEqual([1, 2, 3, 4]);
    expect(claimOf(0).by).toBe('homeA/f-0');
  });

  it("records the claim's agent: the claim outlives the gaxx that made it as long as the agent runs", async () => {
    const i = await claimSlot(slots, [0], 'homeA/f-0', none);
    recordSlotAgent(slots, i, 'homeA/f-0', process.ppid);
    expect(claimOf(i).agent?.pid).toBe(process.ppid);
    // Another claimant's record changes nothing.
    recordSlotAgent(slots, i, 'homeB/f-0', process.pid);
    expect(claimOf(i).agent?.pid).toBe(process.ppid);
    // The maker gone (written as a gone one), the agent alive: still held.
    writeFileSync(join(slots, String(i)), JSON.stringify({ ...claimOf(i), maker: { pid: deadPid() } }));
    expect(await claimSlot(slots, [0], 'homeB/f-0', none)).not.toBe(i);
  });

  it('skips an address where something else listens on the port, and the ones it is told to skip', async () => {
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen({ host: localAddress(0), port: 0 }, resolve));
    try {
      const port = (squatter.address() as AddressInfo).port;
      expect(await claimSlot(slots, [port], 'homeA/f-0', none)).toBe(1);
      // The address skipped is not left claimed.
      expect(existsSync(join(slots, '0'))).toBe(false);
      expect(await claimSlot(slots, [port], 'homeA/f-1', new Set([2, 3]))).toBe(4);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('refuses a claims dir others may write, or a symlink in its place (INSECURE_FILE_MODE)', () => {
    chmodSync(slots, 0o777);
    expect(() => prepareSlotsDir(join(base, 'run'))).toThrow(expect.objectContaining({ code: 'INSECURE_FILE_MODE' }));
    chmodSync(slots, 0o750);
    expect(() => prepareSlotsDir(join(base, 'run'))).toThrow(expect.objectContaining({ code: 'INSECURE_FILE_MODE' }));
    rmSync(slots, { recursive: true });
    mkdirSync(join(base, 'elsewhere'), { mode: 0o700 });
    symlinkSync(join(base, 'elsewhere'), slots);
    expect(() => prepareSlotsDir(join(base, 'run'))).toThrow(expect.objectContaining({ code: 'INSECURE_FILE_MODE' }));
    // The run dir it lies in, too.
    rmSync(slots);
    chmodSync(join(base, 'run'), 0o777);
    expect(() => prepareSlotsDir(join(base, 'run'))).toThrow(expect.objectContaining({ code: 'INSECURE_FILE_MODE' }));
  });
});
