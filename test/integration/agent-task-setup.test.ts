// A task the agent cannot set up is the agent's failure, not the command's: on the built agent
// (run `npm run build` first) over real mTLS, a task whose work dir cannot be made (its tasks dir
// made read-only after the start, the tasks dir a file) or whose sandbox cannot start (bwrap
// cannot fork under a process limit of 1) ends its Exec with UNAVAILABLE, marked as never
// started, naming the errno and the path, and is not held as a result: the same task id runs
// once the agent can run it. Its Health says NOT_SERVING while the tasks dir cannot be written.
// A command that cannot run is still the command's: missing 127, not executable 126, as a shell
// says, sandboxed or not.
import { chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthCheckRequest, HealthCheckResponse__Output } from '../../proto/index.js';
import { auditEvents, markerDir, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { execCollect, exitOf, rawAgentClient, unary, type RawClients } from '../helpers/grpc.js';
import { makePki, type Pki } from '../helpers/pki.js';

let dir: string;
let pki: Pki;
let n = 0;
const clients: RawClients[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-task-setup-'));
  pki = await makePki(dir);
});
afterAll(async () => {
  for (const c of clients) c.close();
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

async function agentWith(args: string[] = []): Promise<{ a: AgentProcess; c: RawClients }> {
  const a = await startAgent({ certsDir: pki.agent.dir, args });
  const c = rawAgentClient(a.address, pki.clients.operator.dir);
  clients.push(c);
  return { a, c };
}

async function health(c: RawClients): Promise<string> {
  const h = await unary<HealthCheckRequest, HealthCheckResponse__Output>(c.health.Check.bind(c.health), { service: '' });
  return h.ok ? h.value.status : `error ${h.gaxxCode}`;
}

describe('a task the agent cannot set up', () => {
  it('whose scratch work dir cannot be made ends as UNAVAILABLE, not started, naming the errno and path; it runs once the dir can be made', async () => {
    const { a, c } = await agentWith();
    expect(exitOf(await execCollect(c.agent, { taskId: `ok-${++n}`, argv: ['true'] }))?.code).toBe(0);
    expect(await health(c)).toBe('SERVING');
    const tasks = join(a.dataDir, 'tasks');
    chmodSync(tasks, 0o555);
    try {
      for (const taskId of ['ro-1', 'ro-2']) {
        const r = await execCollect(c.agent, { taskId, argv: ['sh', '-c', 'echo ran'] });
        expect(r.error).toMatchObject({ gaxxCode: 'UNAVAILABLE' });
        expect(r.notStarted).toBe(true);
        expect(r.errorDetails).toContain(join(tasks, taskId));
        expect(r.errorDetails).toMatch(/EACCES/);
        expect(exitOf(r)).toBeUndefined();
        expect(r.stdout).toBe('');
      }
      // The agent's data dir cannot take a task: its Health says so (a scheduler's breaker stays open).
      expect(await health(c)).toBe('NOT_SERVING');
      const refused = auditEvents(a.auditLog).filter((e) => e.taskId === 'ro-1');
      expect(refused.map((e) => [e.event, e.code])).toEqual([['exec_refused', 'UNAVAILABLE']]);
    } finally {
      chmodSync(tasks, 0o700);
    }
    // Not held as a result: the same id runs now.
    const again = await execCollect(c.agent, { taskId: 'ro-1', argv: ['sh', '-c', 'echo ran'] });
    expect([exitOf(again)?.code, again.stdout, again.error]).toEqual([0, 'ran\n', undefined]);
    expect(await health(c)).toBe('SERVING');
  });

  it('whose tasks dir is a file ends as UNAVAILABLE, not as exit 126', async () => {
    const { a, c } = await agentWith(['--warm-sandboxes', '0']);
    expect(exitOf(await execCollect(c.agent, { taskId: `ok-${++n}`, argv: ['true'] }))?.code).toBe(0);
    const tasks = join(a.dataDir, 'tasks');
    renameSync(tasks, `${tasks}.aside`);
    writeFileSync(tasks, '');
    chmodSync(tasks, 0o644);
    try {
      const r = await execCollect(c.agent, { taskId: `file-${++n}`, argv: ['true'] });
      expect([r.error?.gaxxCode, r.notStarted, exitOf(r)?.code]).toEqual(['UNAVAILABLE', true, undefined]);
      expect(r.errorDetails).toContain(tasks);
    } finally {
      rmSync(tasks);
      renameSync(`${tasks}.aside`, tasks);
    }
  });

  it('whose sandbox cannot start (bwrap cannot fork) ends as UNAVAILABLE with what bwrap said, not as exit 1', async () => {
    const { c } = await agentWith(['--task-limits', '{"isolation":"rlimit","processes":1}']);
    const r = await execCollect(c.agent, { taskId: `nproc-${++n}`, argv: ['sh', '-c', 'echo ran'] });
    expect([r.error?.gaxxCode, r.notStarted, exitOf(r)?.code, r.stdout]).toEqual(['UNAVAILABLE', true, undefined, '']);
    expect(r.errorDetails).toMatch(/bwrap: .*Resource temporarily unavailable/);
  });
});

describe("a command that cannot run is the command's failure", () => {
  for (const sandbox of ['sandboxed', 'unsandboxed'] as const) {
    it(`missing: 127; not executable: 126 (${sandbox})`, async () => {
      const { c } = await agentWith(sandbox === 'unsandboxed' ? ['--unsafe-no-isolation'] : []);
      const scripts = markerDir('setup-cmd');
      const plain = join(scripts, 'plain');
      writeFileSync(plain, 'echo hi\n');
      chmodSync(plain, 0o644);
      const codes: Record<string, number | undefined> = {};
      for (const [what, argv] of [
        ['missing path', ['/no/such/command']],
        ['missing name', ['no-such-command-here']],
        ['not executable', [plain]],
        ['a directory', [scripts]],
      ] as const) {
        const r = await execCollect(c.agent, { taskId: `cmd-${++n}`, argv: [...argv] });
        expect(r.error).toBeUndefined();
        expect(exitOf(r)?.error).not.toBe('');
        codes[what] = exitOf(r)?.code;
      }
      expect(codes).toEqual({ 'missing path': 127, 'missing name': 127, 'not executable': 126, 'a directory': 126 });
    });
  }
});
