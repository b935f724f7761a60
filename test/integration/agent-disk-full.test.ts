// An agent whose disk fills fails closed: with its dirs on a small tmpfs of their own, a task
// fills the disk; new work is refused (RESOURCE_EXHAUSTED) while the audit log or the journal
// cannot be written, Health and Info still answer, and once space is freed work is taken again
// without a restart, with every task that ran in the audit log. A disk under the reserve refuses
// tasks before it is full; a torn journal line is skipped at restart; a start on a full or
// read-only disk says so. Real agents as nobody, real mounts (root only).
import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exitCodeFor, type HealthCheckRequest, type HealthCheckResponse__Output, type InfoRequest, type InfoResponse__Output } from '../../proto/index.js';
import { AGENT_GID, AGENT_UID, auditEvents, runAgentExpectFailure, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { execCollect, exitOf, putFile, rawAgentClient, unary, type RawClients } from '../helpers/grpc.js';
import { makePki, type Pki } from '../helpers/pki.js';

const root = process.getuid?.() === 0;
let dir: string;
let pki: Pki;
const mounts: string[] = [];

/** A tmpfs of `size` at `<dir>/<name>`, owned by the agent user (unmounted in afterAll). */
function tmpfs(name: string, size: string): string {
  const at = join(dir, name);
  mkdirSync(at);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755,uid=${AGENT_UID},gid=${AGENT_GID}`, 'tmpfs', at]);
  mounts.push(at);
  return at;
}

function copyCerts(name: string): string {
  const to = join(dir, name);
  cpSync(pki.agent.dir, to, { recursive: true });
  return to;
}

beforeAll(async () => {
  if (!root) return;
  dir = mkdtempSync(join(tmpdir(), 'gaxx-disk-full-'));
  chmodSync(dir, 0o755);
  pki = await makePki(dir);
});
afterAll(async () => {
  if (!root) return;
  await stopAllAgents();
  for (const m of mounts.reverse()) execFileSync('umount', ['-l', m]);
  rmSync(dir, { recursive: true, force: true });
});

async function health(c: RawClients): Promise<string> {
  const h = await unary<HealthCheckRequest, HealthCheckResponse__Output>(c.health.Check.bind(c.health), { service: '' });
  return h.ok ? h.value.status : `error ${h.gaxxCode}`;
}

async function info(c: RawClients): Promise<boolean> {
  return (await unary<InfoRequest, InfoResponse__Output>(c.agent.Info.bind(c.agent), {})).ok;
}

/** Task ids with both their exec_started and exec_finished in the audit log. */
function audited(a: AgentProcess): Set<string> {
  const events = auditEvents(a.auditLog);
  const started = new Set(events.filter((e) => e.event === 'exec_started').map((e) => e.taskId as string));
  return new Set(events.filter((e) => e.event === 'exec_finished' && started.has(e.taskId as string)).map((e) => e.taskId as string));
}

describe.runIf(root)('a full disk', () => {
  it('refuses new work while the audit log or journal cannot be written, and takes it again once space is freed', async () => {
    const disk = tmpfs('full', '64m');
    const a = await startAgent({ certsDir: copyCerts('full-certs'), dataDir: join(disk, 'data'), args: ['--disk-reserve', '0'] });
    const c = rawAgentClient(a.address, pki.clients.operator.dir);
    const fill = await execCollect(c.agent, { taskId: 'fill', workDir: 'fill', argv: ['sh', '-c', 'dd if=/dev/zero of=f bs=1M; true'] }, undefined, 120_000);
    expect(exitOf(fill)?.code).toBe(0);
    // The disk is full; the lines already written may leave a page's slack, so a few tasks may
    // still be recorded: the first one that cannot be is the last that runs.
    const ran = ['fill'];
    let refused: string | undefined;
    let refusedId = '';
    for (let i = 0; i < 40 && refused === undefined; i++) {
      refusedId = `after-${i}`;
      const r = await execCollect(c.agent, { taskId: refusedId, argv: ['true'] });
      if (r.error) refused = r.error.gaxxCode;
      else ran.push(refusedId);
    }
    expect(refused).toBe('RESOURCE_EXHAUSTED');
    // Refused again (not a one-off), files too; the agent still answers.
    expect((await execCollect(c.agent, { taskId: 'again', argv: ['true'] })).error?.gaxxCode).toBe('RESOURCE_EXHAUSTED');
    const put = await putFile(c.agent, { path: 'up.txt' }, Buffer.from('x'));
    expect(put.ok ? 'ok' : put.gaxxCode).toBe('RESOURCE_EXHAUSTED');
    expect(await health(c)).toBe('SERVING');
    expect(await info(c)).toBe(true);
    // Logged beside the refusals: the log may reach us after the answers.
    await vi.waitFor(() => expect(a.stderr()).toMatch(/"errno":"ENOSPC"/), { timeout: 30_000, interval: 20 });

    // The space comes back (an operator over SSH): work is taken again, no restart.
    rmSync(join(a.dataDir, 'fill', 'f'));
    const back = await execCollect(c.agent, { taskId: 'back', argv: ['true'] });
    expect(exitOf(back)?.code).toBe(0);
    ran.push('back');
    // Every task that ran is in the audit log, start and end, the fill's end among them.
    const seen = audited(a);
    expect(ran.filter((t) => !seen.has(t))).toEqual([]);
    expect(auditEvents(a.auditLog).some((e) => e.event === 'exec_started' && e.taskId === refusedId)).toBe(false);
    c.close();

    // The journal replays across a restart; a torn last line (a crash mid-write) is skipped.
    expect(await a.stop()).toBe(0);
    const journal = join(`${a.dataDir}-state`, 'tasks.jsonl');
    appendFileSync(journal, '{"t":"s","id":"torn","k":"');
    const b = await startAgent({ certsDir: copyCerts('full-certs-2'), dataDir: a.dataDir, args: ['--disk-reserve', '0'] });
    expect(b.stderr()).toMatch(/task journal were skipped/);
    expect(readFileSync(journal, 'utf8').endsWith('\n')).toBe(true);
    const cb = rawAgentClient(b.address, pki.clients.operator.dir);
    const replay = await execCollect(cb.agent, { taskId: 'back', argv: ['true'] });
    expect(replay.events[0]?.started?.replayed).toBe(true);
    cb.close();
    await b.stop();
  });

  it('refuses a task while the disk is under the reserve, before it is full', async () => {
    const disk = tmpfs('reserve', '64m');
    const a = await startAgent({ certsDir: copyCerts('reserve-certs'), dataDir: join(disk, 'data'), args: ['--disk-reserve', '16MiB'] });
    const c = rawAgentClient(a.address, pki.clients.operator.dir);
    const fill = await execCollect(c.agent, { taskId: 'fill', workDir: 'fill', argv: ['dd', 'if=/dev/zero', 'of=f', 'bs=1M', 'count=56'] }, undefined, 120_000);
    expect(exitOf(fill)?.code).toBe(0);
    expect((await execCollect(c.agent, { taskId: 'low', argv: ['true'] })).error?.gaxxCode).toBe('RESOURCE_EXHAUSTED');
    // Nothing failed to be written: the refusal is the reserve's, and the fill is audited.
    expect(audited(a).has('fill')).toBe(true);
    rmSync(join(a.dataDir, 'fill', 'f'));
    expect(exitOf(await execCollect(c.agent, { taskId: 'ok', argv: ['true'] }))?.code).toBe(0);
    c.close();
    await a.stop();
  });

  it('a start on a full disk says the disk is full, and one on a read-only one says so', async () => {
    const disk = tmpfs('start', '16m');
    const dataDir = join(disk, 'data');
    const certs = copyCerts('start-certs');
    // A journal with something in it, so that the start writes it anew.
    const a = await startAgent({ certsDir: certs, dataDir, args: ['--disk-reserve', '0'] });
    const c = rawAgentClient(a.address, pki.clients.operator.dir);
    expect(exitOf(await execCollect(c.agent, { taskId: 'one', argv: ['echo', 'one'] }))?.code).toBe(0);
    c.close();
    await a.stop();
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${join(dataDir, 'filler')}`, 'bs=1M'], { stdio: 'ignore' });
    } catch {
      // dd ends with ENOSPC: the disk is full.
    }
    const full = await runAgentExpectFailure({ certsDir: certs, dataDir, args: ['--disk-reserve', '0'] });
    expect(full.code).toBe(exitCodeFor('FILE_ACCESS'));
    expect(full.stderr.trim().split('\n')).toHaveLength(1);
    // The cause and its fix, not "create it for the agent user".
    expect(full.stderr).toContain('no space left on the device');
    expect(full.stderr).toContain(`df -h ${dataDir}-state`);
    expect(full.stderr).not.toContain('install -d');
    rmSync(join(dataDir, 'filler'));

    execFileSync('mount', ['-o', 'remount,ro', disk]);
    // ownDirs: the helper changes nothing on the read-only mount.
    const ro = await runAgentExpectFailure({ certsDir: certs, dataDir, ownDirs: true, args: ['--disk-reserve', '0'] });
    execFileSync('mount', ['-o', 'remount,rw', disk]);
    expect(ro.code).toBe(exitCodeFor('FILE_ACCESS'));
    expect(ro.stderr).toContain('read-only file system');
    expect(ro.stderr).toContain('read-write');
    expect(ro.stderr).not.toContain('install -d');
  });
});
