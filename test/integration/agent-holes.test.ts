// Smaller holes on the built agent (run `npm run build` first): an admitted caller's refused
// requests (bad paths, signed work that does not hold) never get its address blocked while
// admission denials do; SIGTERM ends the agent on
// its own while clients hold connections and a task open.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, stopAllAgents } from '../helpers/agent.js';
import { execCollect, exitOf, getFile, rawAgentClient, unary } from '../helpers/grpc.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { rawSigner, signedExec } from '../helpers/signed.js';
import type { InfoResponse__Output } from '../../proto/index.js';

let dir: string;
let pki: Pki;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-holes-'));
  pki = await makePki(dir);
});
afterAll(async () => {
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe('address blocking', () => {
  it("does not count an admitted caller's refused requests (PATH_ESCAPE, signed work that does not hold), but does count role denials", async () => {
    const guards = { block: { threshold: 3, windowMs: 60_000, cooldownMs: 60_000, exempt: [] } };
    const agent = await startAgent({ certsDir: pki.agent.dir, args: ['--guards', JSON.stringify(guards)] });
    const op = rawAgentClient(agent.address, pki.clients.operator.dir);
    const codes: Array<string | undefined> = [];
    for (let i = 0; i < 6; i++) {
      const r = await getFile(op.agent, `../escape-${i}`);
      codes.push(r.ok ? 'ok' : r.gaxxCode);
    }
    expect(codes).toEqual(Array(6).fill('PATH_ESCAPE'));
    const good = await execCollect(op.agent, { taskId: 'after-escapes', argv: ['/bin/echo', 'fine'] });
    expect(good.stdout).toBe('fine\n');
    // Jobs written into Redis by other means reach the agent through the honest scheduler: their
    // refusals (twice the threshold of each kind) are the job's, not the scheduler's.
    const sched = rawAgentClient(agent.address, pki.clients.scheduler.dir);
    const alice = rawSigner(pki.clients.operator.dir);
    const target = { fleet: '', host: agent.address, agents: [agent.address] };
    const job = (i: number, argv: string[]) => ({ runId: `bad${i}`, taskId: 't', argv, target });
    const refused: Array<string | undefined> = [];
    for (let i = 0; i < 6; i++) {
      const bad = [
        { taskId: `unsigned-${i}`, argv: ['true'] },
        { ...signedExec(alice, job(i, ['true'])), argv: ['/bin/echo', 'altered'] },
        signedExec(rawSigner(pki.clients.foreign.dir), job(i, ['true'])),
      ];
      for (const req of bad) refused.push((await execCollect(sched.agent, req)).error?.gaxxCode);
    }
    expect(new Set(refused)).toEqual(new Set(['UNSIGNED_TASK', 'SIGNATURE_INVALID', 'SIGNER_UNTRUSTED']));
    expect(refused).toHaveLength(18);
    const signed = await execCollect(sched.agent, signedExec(alice, job(99, ['/bin/echo', 'signed'])));
    expect(signed.stdout).toBe('signed\n');
    const info = await unary<object, InfoResponse__Output>(op.agent.Info.bind(op.agent), {});
    expect(info.ok && info.value.blockedPeers).toEqual([]);
    sched.close();
    // The control: the same number of role denials does block the address.
    const monitor = rawAgentClient(agent.address, pki.clients.monitor.dir);
    const denied: Array<string | undefined> = [];
    // The call that crosses the threshold may see its connection cut instead of its status.
    for (let i = 0; i < 3; i++) denied.push((await execCollect(monitor.agent, { taskId: `denied-${i}`, argv: ['true'] })).error?.gaxxCode);
    expect(denied.slice(0, 2)).toEqual(['PERMISSION_DENIED', 'PERMISSION_DENIED']);
    const after = await unary<object, InfoResponse__Output>(op.agent.Info.bind(op.agent), {});
    // Refused before TLS: a transport error with no gaxx code, gRPC UNAVAILABLE.
    expect(after.ok ? 'ok' : after.status).toBe(14);
    op.close();
    monitor.close();
    await agent.stop();
  });
});

describe('SIGTERM', () => {
  it('ends the agent on its own while clients hold connections and a task open', async () => {
    const agent = await startAgent({ certsDir: pki.agent.dir, args: ['--shutdown-grace', '1s'] });
    const clients = [0, 1, 2].map(() => rawAgentClient(agent.address, pki.clients.operator.dir));
    for (const c of clients) expect((await unary<object, InfoResponse__Output>(c.agent.Info.bind(c.agent), {})).ok).toBe(true);
    let started = false;
    const running = execCollect(clients[0]!.agent, { taskId: 'long', argv: ['/bin/sh', '-c', 'echo up; exec sleep 600'] }, (ev) => {
      if (ev.stdout) started = true;
    });
    for (let i = 0; i < 400 && !started; i++) await new Promise((r) => setTimeout(r, 25));
    expect(started).toBe(true);
    agent.kill('SIGTERM');
    // A stuck agent would only go when the watchdog kills it (exit code null).
    const watchdog = setTimeout(() => agent.kill('SIGKILL'), 60_000);
    const code = await agent.exited;
    clearTimeout(watchdog);
    expect(code).toBe(0);
    const r = await running;
    expect(exitOf(r)?.reason ?? r.error?.gaxxCode).toBeDefined();
    for (const c of clients) c.close();
    // A new agent on the same dirs serves.
    const next = await startAgent({ certsDir: pki.agent.dir });
    const c = rawAgentClient(next.address, pki.clients.operator.dir);
    expect(exitOf(await execCollect(c.agent, { taskId: 'again', argv: ['true'] }))?.code).toBe(0);
    c.close();
  });
});
