// A task whose line ahead of its spawn cannot be written to the task journal (its state dir's
// file system filled, or turned read-only, while the agent ran; nothing failed before): the
// agent does not start it and refuses it as its disk's (RESOURCE_EXHAUSTED for a full disk,
// FILE_ACCESS for a read-only one, each with a retry hint), as it refuses work while its journal
// cannot be written. A scheduler takes either as a refusal of new work: a task pinned to that
// agent waits, saying why, and runs once when space is back (else ends error with the agent's
// reason), an any-host one runs on another agent; the refused exec id then runs (it was never
// recorded as started, so not taken for lost). Real agents as nobody, a real tmpfs and a real
// ext4 on a loop device (root only).
import { execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { InfoRequest, InfoResponse__Output } from '../../proto/index.js';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { AGENT_GID, AGENT_UID, auditEvents, markerFile, startAgent } from '../helpers/agent.js';
import { execCollect, exitOf, rawAgentClient, unary } from '../helpers/grpc.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';

const root = process.getuid?.() === 0;
/** tmpfs allocates whole pages: a line that fits in the journal's last page is written on a full disk. */
const PAGE = 4096;

describe.runIf(root)('a task the task journal cannot record ahead of its start', () => {
  let world: SchedulerWorld;
  let disk = '';

  beforeAll(async () => {
    world = await startSchedulerWorld({ agents: 0, prefix: 'gxjfull-' });
    disk = join(world.dir, 'state-fs');
    mkdirSync(disk);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=8m,mode=0755,uid=${AGENT_UID},gid=${AGENT_GID}`, 'tmpfs', disk]);
  });

  afterAll(async () => {
    if (disk) execFileSync('umount', ['-l', disk]);
    await world?.close();
  });

  it('is not started and refused as the disk’s; once space is back it runs, once', async () => {
    const stateDir = join(disk, 'state');
    const a = await startAgent({ certsDir: world.pki.agent.dir, args: ['--disk-reserve', '0', '--state-dir', stateDir] });
    const c = rawAgentClient(a.address, world.pki.clients.operator.dir);
    const ran = markerFile('journal-ahead-full', 'raw.log');
    const queued = markerFile('journal-ahead-full', 'queued.log');
    const filler = join(disk, 'filler');
    const w = SchedulerWorker.start({ settings: world.settings, connect: world.connect(), policy: { backoffMaxMs: 300 } });
    try {
      expect(exitOf(await execCollect(c.agent, { taskId: 'before', argv: ['true'] }))?.code).toBe(0);
      // The journal ends on a page boundary (padded with a line the journal reads as nothing:
      // forget a task it never had), then the file system fills: its next line has no room.
      const journal = join(stateDir, 'tasks.jsonl');
      let slack = (PAGE - (statSync(journal).size % PAGE)) % PAGE;
      const pad = '{"t":"u","id":"pad"}';
      if (slack > 0 && slack < pad.length + 1) slack += PAGE;
      if (slack > 0) appendFileSync(journal, `${pad.slice(0, -1)}${' '.repeat(slack - pad.length - 1)}}\n`);
      expect(statSync(journal).size % PAGE).toBe(0);
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M'], { stdio: 'ignore' });
      } catch {
        // dd ends with ENOSPC: the disk is full.
      }

      const req = { taskId: 'ahead-full', argv: ['sh', '-c', 'echo ran >> "$0"', ran] };
      const refused = await execCollect(c.agent, req);
      expect(refused.error?.gaxxCode).toBe('RESOURCE_EXHAUSTED');
      expect(refused.events).toEqual([]);
      // The agent logs the refusal beside its answer: the log may reach us after the answer.
      await vi.waitFor(() => expect(a.stderr()).toMatch(/"errno":"ENOSPC"/), { timeout: 30_000, interval: 20 });
      expect(a.stderr()).toContain(`its task journal ${journal} cannot be written`);
      expect(readFileSync(ran, 'utf8')).toBe('');
      const info = await unary<InfoRequest, InfoResponse__Output>(c.agent.Info.bind(c.agent), {});
      expect(info.ok && info.value.runningTasks).toBe(0);
      expect(auditEvents(a.auditLog).some((e) => e.event === 'exec_started' && e.taskId === 'ahead-full')).toBe(false);

      // A scheduler's task pinned to that agent waits for it, saying why, and runs once space is back.
      const enq = await world.queue.enqueueRun(
        { runId: 'jfull', tasks: [{ taskId: 't', agents: [a.address], target: { host: a.address }, argv: ['sh', '-c', `echo ran >> ${queued}`] }] },
        world.signer,
      );
      const notes: string[] = [];
      const result = waitForRun(world.queue.redis, 'jfull', enq.taskIds, { timeoutMs: 120_000, onNote: (_t, text) => notes.push(text) });
      await vi.waitFor(() => expect(notes.some((n) => /refuses new tasks; waiting up to .*task journal .*ENOSPC/.test(n))).toBe(true), {
        timeout: 60_000,
        interval: 20,
      });
      expect(readFileSync(queued, 'utf8')).toBe('');
      rmSync(filler);
      const r = (await result).results.get('t');
      expect({ outcome: r?.outcome, attempts: r?.attempts }).toEqual({ outcome: 'succeeded', attempts: 1 });
      expect(readFileSync(queued, 'utf8')).toBe('ran\n');

      // The refused exec id was never recorded: asked again, it runs (not lost, not a replay).
      const again = await execCollect(c.agent, req);
      expect(exitOf(again)?.code).toBe(0);
      expect(again.events[0]?.started?.replayed).toBe(false);
      expect(readFileSync(ran, 'utf8')).toBe('ran\n');
      expect(existsSync(filler)).toBe(false);
    } finally {
      rmSync(filler, { force: true });
      await w.drain(5000);
      c.close();
      await a.stop();
    }
  }, 240_000);

  it('is not started on a read-only file system and refused as the disk’s: pinned tasks wait then end with it, others run elsewhere', async () => {
    // ext4 on a loop device, aborted while the agent runs: every write to it fails EROFS, through
    // the journal's open descriptor too (a plain remount read-only is refused while it is open).
    const image = join(world.dir, 'state.img');
    const fs = join(world.dir, 'state-ro');
    mkdirSync(fs);
    execFileSync('truncate', ['-s', '32M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', image]);
    execFileSync('mount', ['-o', 'loop', image, fs]);
    chownSync(fs, AGENT_UID, AGENT_GID);
    const stateDir = join(fs, 'state');
    const ro = await startAgent({ certsDir: world.pki.agent.dir, args: ['--disk-reserve', '0', '--state-dir', stateDir] });
    const other = await startAgent({ certsDir: world.pki.agent.dir });
    const c = rawAgentClient(ro.address, world.pki.clients.operator.dir);
    const w = SchedulerWorker.start({ settings: world.settings, connect: world.connect(), policy: { backoffMaxMs: 300, busyWaitMs: 3000 } });
    try {
      expect(exitOf(await execCollect(c.agent, { taskId: 'before', argv: ['true'] }))?.code).toBe(0);
      execFileSync('mount', ['-o', 'remount,abort', fs]);
      const ran = markerFile('journal-ahead-full', 'ro-raw.log');
      const refused = await execCollect(c.agent, { taskId: 'ahead-ro', argv: ['sh', '-c', 'echo ran >> "$0"', ran] });
      expect(refused.error?.gaxxCode).toBe('FILE_ACCESS');
      expect(refused.events).toEqual([]);
      await vi.waitFor(() => expect(ro.stderr()).toMatch(/"errno":"EROFS"/), { timeout: 30_000, interval: 20 });

      const pinned = markerFile('journal-ahead-full', 'ro-pinned.log');
      const anyLog = markerFile('journal-ahead-full', 'ro-any.log');
      const both = [ro.address, other.address];
      const enq = await world.queue.enqueueRun(
        {
          runId: 'jro',
          tasks: [
            { taskId: 'pin', agents: both, target: { host: ro.address }, argv: ['sh', '-c', `echo ran >> ${pinned}`] },
            ...Array.from({ length: 6 }, (_, i) => ({
              taskId: `any${i}`,
              agents: both,
              target: { any: true as const },
              argv: ['sh', '-c', `echo any${i} >> ${anyLog}`],
            })),
          ],
        },
        world.signer,
      );
      const notes: string[] = [];
      const res = await waitForRun(world.queue.redis, 'jro', enq.taskIds, { timeoutMs: 120_000, onNote: (_t, text) => notes.push(`${_t}: ${text}`) });
      for (let i = 0; i < 6; i++) expect({ i, ...res.results.get(`any${i}`) }).toMatchObject({ i, outcome: 'succeeded', host: other.address });
      expect(readFileSync(anyLog, 'utf8').split('\n').filter(Boolean).sort()).toEqual(Array.from({ length: 6 }, (_, i) => `any${i}`));
      const pin = res.results.get('pin');
      expect({ outcome: pin?.outcome, reason: pin?.reason, attempts: pin?.attempts, host: pin?.host }).toEqual({
        outcome: 'error',
        reason: 'FILE_ACCESS',
        attempts: 0,
        host: ro.address,
      });
      expect(pin?.error).toMatch(/read-only/);
      expect(notes.some((n) => n.startsWith(`pin: task pin: ${ro.address} refuses new tasks; waiting up to`))).toBe(true);
      expect(readFileSync(pinned, 'utf8')).toBe('');
      expect(readFileSync(ran, 'utf8')).toBe('');
      expect(
        auditEvents(ro.auditLog)
          .filter((e) => e.event === 'exec_started')
          .map((e) => e.taskId),
      ).toEqual(['before']);
    } finally {
      await w.drain(5000);
      c.close();
      await ro.stop();
      await other.stop();
      execFileSync('umount', ['-l', fs]);
    }
  }, 240_000);
});
