// PutFile/GetFile through a real agent: round trip, confinement (.., absolute, symlink
// escapes), checksum and size checks that leave nothing behind, and the operator-only cert area.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { execCollect, exitOf, getFile, putFile, rawAgentClient, unary, type RawClients } from '../helpers/grpc.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { AGENT_GID, AGENT_UID } from '../helpers/agent.js';

let dir: string;
let pki: Pki;
let agent: AgentProcess;
let op: RawClients;
let sched: RawClients;

async function stillServing(): Promise<void> {
  expect((await unary(op.agent.Info.bind(op.agent), {})).ok).toBe(true);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-agent-files-'));
  pki = await makePki(dir);
  agent = await startAgent({ certsDir: pki.agent.dir, metrics: false });
  op = rawAgentClient(agent.address, pki.clients.operator.dir);
  sched = rawAgentClient(agent.address, pki.clients.scheduler.dir);
});
afterAll(async () => {
  op?.close();
  sched?.close();
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe('PutFile and GetFile', () => {
  it('round-trips a multi-chunk file atomically with its mode and sha256', async () => {
    const data = Buffer.alloc(200 * 1024 + 7, 'abc');
    const sha = createHash('sha256').update(data).digest('hex');
    const put = await putFile(op.agent, { path: 'in/data.bin', mode: 0o640 }, data);
    expect(put).toEqual({ ok: true, value: { path: 'in/data.bin', size: data.length, sha256: sha } });
    expect(statSync(join(agent.dataDir, 'in', 'data.bin')).mode & 0o777).toBe(0o640);
    const got = await getFile(op.agent, 'in/data.bin');
    expect(got.ok && got.value.header).toEqual({ size: data.length, mode: 0o640, sha256: sha });
    expect(got.ok && got.value.data.equals(data)).toBe(true);
    expect(readdirSync(join(agent.dataDir, 'in'))).toEqual(['data.bin']);
  });

  it("files are the operator's: a scheduler's PutFile and GetFile are PERMISSION_DENIED, nothing is written or read, and the agent serves on", async () => {
    // The script a signed task would run in its work dir, and a task's scratch file.
    expect((await putFile(op.agent, { path: 'job/job.sh', mode: 0o644 }, Buffer.from('echo legit\n'))).ok).toBe(true);
    const secret = await execCollect(op.agent, { taskId: 'holds-a-secret', argv: ['sh', '-c', 'echo AWS_SECRET=abc > creds.env'] });
    expect(exitOf(secret)?.code, secret.stderr).toBe(0);
    const codes: string[] = [];
    for (const path of ['job/job.sh', 'job/other.sh']) {
      const r = await putFile(sched.agent, { path }, Buffer.from('echo planted'));
      codes.push(r.ok ? 'ok' : `${r.status}:${r.gaxxCode}`);
    }
    for (const path of ['job/job.sh', 'tasks/holds-a-secret/creds.env']) {
      const r = await getFile(sched.agent, path);
      codes.push(r.ok ? 'ok' : `${r.status}:${r.gaxxCode}`);
    }
    expect(codes).toEqual(Array(4).fill('7:PERMISSION_DENIED'));
    // Refused for the role, not for want of the files: the operator reads both.
    for (const path of ['job/job.sh', 'tasks/holds-a-secret/creds.env']) expect((await getFile(op.agent, path)).ok, path).toBe(true);
    expect(readFileSync(join(agent.dataDir, 'job', 'job.sh'), 'utf8')).toBe('echo legit\n');
    expect(readdirSync(join(agent.dataDir, 'job'))).toEqual(['job.sh']);
    await stillServing();
  });

  it('refuses ../x, /etc/x and symlink escapes with PATH_ESCAPE', async () => {
    symlinkSync('/etc', join(agent.dataDir, 'escape'));
    const codes = [];
    for (const path of ['../x', '/etc/x', 'a/../../x', 'escape/x']) {
      const r = await putFile(op.agent, { path }, Buffer.from('x'));
      codes.push(r.ok ? 'ok' : `${r.status}:${r.gaxxCode}`);
    }
    const g = await getFile(op.agent, 'escape/hostname');
    codes.push(g.ok ? 'ok' : `${g.status}:${g.gaxxCode}`);
    expect(codes).toEqual(Array(5).fill('7:PATH_ESCAPE'));
    await stillServing();
  });

  it("tasks/ is the agent's: PutFile there is PERMISSION_DENIED even for an operator, so no task dir is pre-seeded or blocked", async () => {
    const codes = [];
    for (const path of ['tasks', 'tasks/pre-1/x', 'tasks/pre-2/Makefile', './tasks/x']) {
      const r = await putFile(op.agent, { path }, Buffer.from('echo planted'));
      codes.push(r.ok ? 'ok' : `${r.gaxxCode}: ${r.details}`);
    }
    expect(codes).toEqual(Array(4).fill("PERMISSION_DENIED: 'tasks/' holds the tasks' own work dirs: put files elsewhere in the data area"));
    // A task given that id starts in an empty dir of its own.
    const r = await execCollect(op.agent, { taskId: 'pre-1', argv: ['sh', '-c', 'ls -A | wc -l'] });
    expect(exitOf(r)?.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('0');
    // Reading a task's files back stays allowed.
    const back = await execCollect(op.agent, { taskId: 'leaves-a-file', argv: ['sh', '-c', 'echo out > result.txt'] });
    expect(exitOf(back)?.code).toBe(0);
    const got = await getFile(op.agent, 'tasks/leaves-a-file/result.txt');
    expect(got.ok && got.value.data.toString()).toBe('out\n');
  });

  it('names that only start with .. are names, not escapes; a GetFile path over 4096 characters is INVALID_ARGUMENT at once', async () => {
    for (const path of ['..cfg/app.conf', '...', '..x']) {
      const r = await putFile(op.agent, { path }, Buffer.from('x'));
      expect(r.ok ? 'ok' : `${r.gaxxCode}`, path).toBe('ok');
      expect((await getFile(op.agent, path)).ok, path).toBe(true);
    }
    const long = await getFile(op.agent, 'x'.repeat(100_000));
    expect(long.ok ? 'ok' : `${long.gaxxCode}: ${long.details}`).toBe('INVALID_ARGUMENT: path: at most 4096 characters');
    await stillServing();
  });

  it('a path through a file is refused as not a directory (INVALID_ARGUMENT), a symlink to a file still as PATH_ESCAPE', async () => {
    expect((await putFile(op.agent, { path: 'plain.txt' }, Buffer.from('x'))).ok).toBe(true);
    symlinkSync(join(agent.dataDir, 'plain.txt'), join(agent.dataDir, 'link-to-file'));
    const through = await putFile(op.agent, { path: 'plain.txt/deeper' }, Buffer.from('x'));
    expect(through.ok ? 'ok' : `${through.gaxxCode}: ${through.details}`).toMatch(/^INVALID_ARGUMENT: 'plain.txt' in 'plain.txt\/deeper' is not a directory/);
    const got = await getFile(op.agent, 'plain.txt/deeper');
    expect(got.ok ? 'ok' : got.gaxxCode).toBe('INVALID_ARGUMENT');
    const linked = await putFile(op.agent, { path: 'link-to-file/deeper' }, Buffer.from('x'));
    expect(linked.ok ? 'ok' : linked.gaxxCode).toBe('PATH_ESCAPE');
    await stillServing();
  });

  it('a sha256 or size mismatch is refused and leaves nothing behind', async () => {
    const bad = await putFile(op.agent, { path: 'sums/a.txt', sha256: '0'.repeat(64) }, Buffer.from('hello'));
    expect(bad).toMatchObject({ ok: false, status: 15, gaxxCode: 'CHECKSUM_MISMATCH' });
    const short = await putFile(op.agent, { path: 'sums/b.txt', size: 10 }, Buffer.from('hello'));
    expect(short).toMatchObject({ ok: false, status: 3, gaxxCode: 'INVALID_ARGUMENT' });
    expect(readdirSync(join(agent.dataDir, 'sums'))).toEqual([]);
    expect((await getFile(op.agent, 'sums/a.txt')) as unknown).toMatchObject({ ok: false, gaxxCode: 'NOT_FOUND' });
    await stillServing();
  });

  it('the cert area is operator-only and holds only the cert files', async () => {
    const denied = await putFile(sched.agent, { path: 'revoked.json', area: 'FILE_AREA_CERTS' }, Buffer.from('{}'));
    expect(denied).toMatchObject({ ok: false, status: 7, gaxxCode: 'PERMISSION_DENIED' });
    const other = await putFile(op.agent, { path: 'evil.sh', area: 'FILE_AREA_CERTS' }, Buffer.from('x'));
    expect(other).toMatchObject({ ok: false, status: 7, gaxxCode: 'PATH_ESCAPE' });
    const ok = await putFile(op.agent, { path: 'staged.txt', area: 'FILE_AREA_DATA' }, Buffer.from('x'));
    expect(ok.ok).toBe(true);
    const text = pki.ca.revocationListText();
    const cert = await putFile(op.agent, { path: 'revoked.json', area: 'FILE_AREA_CERTS', mode: 0o666 }, Buffer.from(text));
    expect(cert.ok).toBe(true);
    expect(statSync(join(pki.agent.dir, 'revoked.json')).mode & 0o777).toBe(0o644);
    await stillServing();
  });

  it('a name over 255 bytes, a directory as the file, a path over 64 directories deep: INVALID_ARGUMENT naming the path, not INTERNAL', async () => {
    expect((await putFile(op.agent, { path: 'adir/inside' }, Buffer.from('x'))).ok).toBe(true);
    const outcomes: string[] = [];
    for (const path of ['x'.repeat(300), 'long/' + 'y'.repeat(256) + '/f', 'adir', 'adir/', 'new-dir/', 'd/'.repeat(2000) + 'f', 'e/'.repeat(65) + 'f']) {
      const r = await putFile(op.agent, { path }, Buffer.from('data'));
      outcomes.push(r.ok ? 'ok' : `${r.gaxxCode}`);
    }
    expect(outcomes).toEqual(Array(7).fill('INVALID_ARGUMENT'));
    // 64 directories deep is still fine, and nothing of the refused ones was made.
    expect((await putFile(op.agent, { path: 'e/'.repeat(64) + 'f' }, Buffer.from('x'))).ok).toBe(true);
    expect(readdirSync(agent.dataDir).filter((n) => ['d', 'long', 'new-dir'].includes(n) || n.startsWith('xxx'))).toEqual([]);
    const got = await getFile(op.agent, 'y'.repeat(300));
    expect(got.ok ? 'ok' : got.gaxxCode).toBe('INVALID_ARGUMENT');
    await stillServing();
  });

  it("a directory the agent's user may not write is FILE_ACCESS naming the path", async () => {
    const ro = join(agent.dataDir, 'root-owned');
    mkdirSync(ro, { mode: 0o755 });
    chownSync(ro, 0, 0);
    const r = await putFile(op.agent, { path: 'root-owned/x' }, Buffer.from('x'));
    expect(r.ok ? 'ok' : `${r.gaxxCode}: ${r.details}`).toMatch(/^FILE_ACCESS: .*'root-owned\/x'/);
    // A file it may not read is no access, not "no file".
    writeFileSync(join(ro, 'secret'), 'x', { mode: 0o600 });
    const g = await getFile(op.agent, 'root-owned/secret');
    expect(g.ok ? 'ok' : `${g.gaxxCode}: ${g.details}`).toMatch(/^FILE_ACCESS: .*'root-owned\/secret'/);
    await stillServing();
  });

  it.runIf(process.getuid?.() === 0)('a full disk is RESOURCE_EXHAUSTED and leaves nothing behind', async () => {
    const full = join(agent.dataDir, 'full');
    mkdirSync(full);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=64k,uid=${AGENT_UID},gid=${AGENT_GID},mode=0700`, 'none', full]);
    try {
      const r = await putFile(op.agent, { path: 'full/big.bin' }, Buffer.alloc(512 * 1024, 1));
      expect(r.ok ? 'ok' : r.gaxxCode).toBe('RESOURCE_EXHAUSTED');
      expect(readdirSync(full)).toEqual([]);
    } finally {
      execFileSync('umount', [full]);
    }
    await stillServing();
  });

  it('GetFile refuses a file over the 1 GiB PutFile takes before reading it (a 64 GiB sparse file a task made)', async () => {
    const made = await execCollect(op.agent, { taskId: 'sparse', argv: ['truncate', '-s', '64G', 'big'] });
    expect(exitOf(made)?.code, made.stderr).toBe(0);
    const got = await getFile(op.agent, 'tasks/sparse/big');
    expect(got.ok ? 'ok' : got.gaxxCode).toBe('FAILED_PRECONDITION');
    await stillServing();
  });
});
