// Issue 3 secrets hygiene and the audit subcommand on the built agent (run `npm run build`
// first): a weak GAXX_AGENT_TOKEN is refused at start without being echoed; a strong one is
// required on every call, never logged; `gaxx-agent audit` prints the trail readably.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAgentCli, runAgentExpectFailure, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { rawAgentClient, type RawClients } from '../helpers/grpc.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { ERROR_CODE_METADATA_KEY, exitCodeFor } from '../../proto/index.js';

const TOKEN = randomBytes(32).toString('base64url');
let dir: string;
let pki: Pki;
let agent: AgentProcess;
let client: RawClients;

/** Info with an optional bearer token: 'ok' or the gaxx error code. */
function infoWith(token: string | undefined): Promise<string> {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve) => {
    client.agent.Info({}, md, { deadline: Date.now() + 10_000 }, (e) => {
      resolve(e ? String(e.metadata?.get(ERROR_CODE_METADATA_KEY)[0] ?? e.code) : 'ok');
    });
  });
}

const auditCli = (args: string[], env: Record<string, string>) => runAgentCli(['audit', ...args], env);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-secrets-'));
  pki = await makePki(dir);
  agent = await startAgent({ certsDir: pki.agent.dir, env: { GAXX_AGENT_TOKEN: TOKEN } });
  client = rawAgentClient(agent.address, pki.clients.operator.dir);
});

afterAll(async () => {
  client?.close();
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe('bearer token', () => {
  it.each(['changeme', 'password123', 'a'.repeat(64), randomBytes(16).toString('hex'), '0123456789abcdef'.repeat(4), 'Password1!'.repeat(5)])(
    'refuses to start with a weak token (%#)',
    async (weak) => {
      const r = await runAgentExpectFailure({ certsDir: pki.agent.dir, env: { GAXX_AGENT_TOKEN: weak } });
      expect(r.code).toBe(exitCodeFor('WEAK_SECRET'));
      expect(r.stderr).toContain('WEAK_SECRET');
      expect(r.stderr).not.toContain(weak);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    },
  );

  it('refuses calls without the token or with a wrong one, serves the right one, and never logs it', async () => {
    expect(await infoWith(undefined)).toBe('UNAUTHENTICATED');
    expect(await infoWith(randomBytes(32).toString('base64url'))).toBe('UNAUTHENTICATED');
    expect(await infoWith(TOKEN)).toBe('ok');
    expect(() => process.kill(agent.pid, 0)).not.toThrow();
    const audit = readFileSync(agent.auditLog, 'utf8');
    expect(audit).toContain('"code":"UNAUTHENTICATED"');
    expect(audit).not.toContain(TOKEN);
    expect(agent.stderr()).not.toContain(TOKEN);
  });
});

describe('an --audit-log inside the data dir', () => {
  it('is refused at start with CONFIG_INVALID; the running agent still serves', async () => {
    const dataDir = join(dir, 'data-audit-inside');
    const r = await runAgentExpectFailure({
      certsDir: pki.agent.dir,
      dataDir,
      env: { GAXX_AGENT_TOKEN: TOKEN },
      args: ['--audit-log', join(dataDir, 'logs', 'audit.log')],
    });
    expect(r.code).toBe(exitCodeFor('CONFIG_INVALID'));
    expect(r.stderr).toContain('CONFIG_INVALID');
    expect(await infoWith(TOKEN)).toBe('ok');
  });
});

describe('gaxx-agent audit', () => {
  it('prints the audit log readably and as JSON lines, and refuses bad options', async () => {
    const readable = await auditCli(['--since', '1h'], { GAXX_AGENT_AUDIT_LOG: agent.auditLog });
    expect(readable.code).toBe(0);
    expect(readable.stdout).toMatch(/agent_started/);
    expect(readable.stdout).toMatch(/auth_denied .*code=UNAUTHENTICATED/);
    const json = await auditCli(['--since', '1h', '--json', '--file', agent.auditLog], {});
    const lines = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string });
    expect(lines.some((l) => l.event === 'auth_denied')).toBe(true);
    const bad = await auditCli(['--since', 'soon', '--file', agent.auditLog], {});
    expect(bad.code).toBe(exitCodeFor('USAGE'));
    expect(bad.stderr).toContain('USAGE');
  });
});
