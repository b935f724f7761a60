// Clients send the agents' bearer token (the built CLI against a real agent that requires one):
// `gaxx exec` and `gaxx run` are refused UNAUTHENTICATED without it, and work with it taken from
// GAXX_AGENT_TOKEN or from the config file; the agent keeps serving throughout.
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCertDir } from '../../certs/index.js';
import { exitCodeFor } from '../../proto/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { acquireEmbeddedRedis } from '../../scheduler/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { runGaxx, type CliRun } from '../helpers/cli.js';
import { homeAgentCerts, initHome } from '../helpers/cli-world.js';

const TOKEN = randomBytes(32).toString('base64url');
let home: string;
let agent: AgentProcess;

const gaxx = (args: string[], env: Record<string, string> = {}): Promise<CliRun> => runGaxx(args, { home, env });

beforeAll(async () => {
  home = await initHome('gxt-');
  const certs = await homeAgentCerts(home);
  agent = await startAgent({ certsDir: certs, env: { GAXX_AGENT_TOKEN: TOKEN } });
});
afterAll(async () => {
  await stopAllAgents();
  if (existsSync(join(home, 'state', 'redis'))) await (await acquireEmbeddedRedis(join(home, 'state'))).release();
  rmSync(home, { recursive: true, force: true });
});

describe('the agent bearer token', () => {
  it('gaxx exec: refused without it, sent from GAXX_AGENT_TOKEN or the config file', async () => {
    const without = await gaxx(['exec', '--agent', agent.address, '--', 'echo', 'hi']);
    expect(without.code).toBe(exitCodeFor('UNAUTHENTICATED'));
    expect(without.stderr).toContain('UNAUTHENTICATED');
    const fromEnv = await gaxx(['exec', '--agent', agent.address, '--', 'echo', 'hi'], { GAXX_AGENT_TOKEN: TOKEN });
    expect([fromEnv.code, fromEnv.stdout]).toEqual([0, 'hi\n']);
    writeFileSync(join(home, 'config', 'config.json'), JSON.stringify({ agent: { token: TOKEN } }), { mode: 0o600 });
    const fromFile = await gaxx(['exec', '--agent', agent.address, '--', 'echo', 'file']);
    rmSync(join(home, 'config', 'config.json'));
    expect([fromFile.code, fromFile.stdout]).toEqual([0, 'file\n']);
  });

  it('gaxx run (the scheduler worker): refused without it, works with it', async () => {
    const without = await gaxx(['run', '--json', '--retries', '0', '--agent', agent.address, '--', 'true']);
    const results = without.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { taskId?: string; reason?: string });
    expect(results.find((r) => r.taskId)?.reason).toBe('UNAUTHENTICATED');
    expect(without.code).not.toBe(0);
    const withToken = await gaxx(['run', '--agent', agent.address, '--', 'echo', 'queued'], { GAXX_AGENT_TOKEN: TOKEN });
    expect(withToken.code, withToken.stderr).toBe(0);
    expect(withToken.stdout).toContain('queued');
  });

  it('the agent client: token option', async () => {
    const creds = loadCertDir(join(home, 'config', 'operator'));
    const bare = AgentClient.connect({ address: agent.address }, creds);
    await expect(bare.info()).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    bare.close();
    const ok = AgentClient.connect({ address: agent.address }, creds, { token: TOKEN });
    expect((await ok.run({ taskId: 'token-ok', argv: ['true'] })).exit.code).toBe(0);
    ok.close();
  });
});
