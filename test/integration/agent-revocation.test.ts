// Revocation cannot be rolled back, and CA certificates are no clients (the built agent, run
// `npm run build` first): an older revocation list written over a newer one is refused and
// audited, the newer one stays in force, also across a restart; a client certificate with
// CA:TRUE signed by the fleet CA is refused; good calls keep working.
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { REVOCATION_FILE, writeFileAtomic } from '../../certs/index.js';
import { AGENT_GID, AGENT_UID, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { putFile, rawAgentClient, unary } from '../helpers/grpc.js';
import { issueCertDir, makePki, type Pki, type PkiCertDir } from '../helpers/pki.js';
import type { InfoResponse__Output } from '../../proto/index.js';

let dir: string;
let pki: Pki;
let bob: PkiCertDir;
let olderList: string;

/** Info as the holder of `certDir`: 'ok' or the gaxx error code. */
async function infoAs(a: AgentProcess, certDir: string): Promise<string> {
  const c = rawAgentClient(a.address, certDir);
  const r = await unary<object, InfoResponse__Output>(c.agent.Info.bind(c.agent), {});
  c.close();
  return r.ok ? 'ok' : String(r.gaxxCode);
}

/** Pushes revoked.json as an operator does (PutFile into the cert area): 'ok' or the gaxx code. */
async function pushList(a: AgentProcess, text: string): Promise<string> {
  const c = rawAgentClient(a.address, pki.clients.operator.dir);
  const r = await putFile(c.agent, { path: REVOCATION_FILE, area: 'FILE_AREA_CERTS' }, Buffer.from(text));
  c.close();
  return r.ok ? 'ok' : String(r.gaxxCode);
}

/** Waits (bounded) for the `n`th cert_reload audit event and returns it. */
async function nthReload(a: AgentProcess, n: number): Promise<Record<string, unknown>> {
  for (let i = 0; i < 400; i++) {
    const events = readFileSync(a.auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.event === 'cert_reload');
    if (events.length >= n) return events[n - 1] as Record<string, unknown>;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no cert_reload #${n} in the audit log: ${a.stderr().slice(-2000)}`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-revocation-'));
  pki = await makePki(dir);
  bob = await issueCertDir(pki.ca, join(dir, 'clients', 'bob'), { identity: { role: 'operator', name: 'bob' } });
  olderList = readFileSync(join(pki.agent.dir, REVOCATION_FILE), 'utf8');
});
afterAll(async () => {
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe('revocation rollback', () => {
  it('refuses an older list over a newer one (REVOCATION_ROLLBACK, audited), also after a restart', async () => {
    const agent = await startAgent({ certsDir: pki.agent.dir, args: ['--cert-poll', '200ms'] });
    expect(await infoAs(agent, bob.dir)).toBe('ok');
    // Signed later (the clock has passed the older list's time): revokes bob too.
    const olderAt = (JSON.parse(olderList) as { issuedAtMs: number }).issuedAtMs;
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(olderAt), { timeout: 10_000, interval: 1 });
    expect(await pushList(agent, pki.ca.revoke(bob.serial))).toBe('ok');
    expect(await nthReload(agent, 1)).toMatchObject({ ok: true });
    expect(await infoAs(agent, bob.dir)).toBe('CERT_REVOKED');
    // The rollback: the older list, in which bob is not revoked.
    expect(await pushList(agent, olderList)).toBe('REVOCATION_ROLLBACK');
    expect(await nthReload(agent, 2)).toMatchObject({ ok: false, code: 'REVOCATION_ROLLBACK' });
    expect(await infoAs(agent, bob.dir)).toBe('CERT_REVOKED');
    expect(await infoAs(agent, pki.clients.operator.dir)).toBe('ok');
    await agent.stop();
    // The dir restored from an old backup behind the agent's back, then a restart.
    const p = join(pki.agent.dir, REVOCATION_FILE);
    writeFileAtomic(p, olderList, 0o644);
    if (process.getuid?.() === 0) chownSync(p, AGENT_UID, AGENT_GID);
    // Restarted on the rolled-back dir: the newest list seen is still in force.
    const again = await startAgent({ certsDir: pki.agent.dir, dataDir: agent.dataDir });
    expect(await infoAs(again, bob.dir)).toBe('CERT_REVOKED');
    expect(await infoAs(again, pki.clients.revoked.dir)).toBe('CERT_REVOKED');
    // Same audit log as before the restart: the start's refusal comes after the two above.
    expect(await nthReload(again, 3)).toMatchObject({ ok: false, code: 'REVOCATION_ROLLBACK', detail: expect.stringMatching(/^at start/) });
    expect(await infoAs(again, pki.clients.operator.dir)).toBe('ok');
    await again.stop();
  });
});

describe('a client certificate with CA:TRUE', () => {
  it('is refused with CERT_INVALID though the fleet CA signed it; a leaf still works', async () => {
    const caClient = await issueCertDir(pki.ca, join(dir, 'clients', 'ca-true'), { identity: { role: 'operator', name: 'mallory' }, testOnlyCaTrue: true });
    const agent = await startAgent({ certsDir: pki.agent.dir });
    expect(await infoAs(agent, caClient.dir)).toBe('CERT_INVALID');
    expect(await infoAs(agent, pki.clients.operator.dir)).toBe('ok');
    await agent.stop();
  });
});
