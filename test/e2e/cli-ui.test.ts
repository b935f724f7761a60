// The built CLI's `gaxx ui`: serves the dashboard for an --agent list, prints its URL with the
// token, refuses bad flags and a non-loopback address, and stops on Ctrl-C.
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { runGaxx, spawnGaxx, stopAllGaxx, type CliRun } from '../helpers/cli.js';
import { homeAgentCerts, initHome } from '../helpers/cli-world.js';

// The installed bin (the bundle, helpers/cli.ts): the page's assets are read from beside it.
let home: string;
let agent: AgentProcess;

const gaxx = (args: string[]): Promise<CliRun> => runGaxx(args, { home });

beforeAll(async () => {
  home = await initHome('gxui-e2e-');
  const certs = await homeAgentCerts(home);
  agent = await startAgent({ certsDir: certs });
});

afterAll(async () => {
  await stopAllGaxx();
  await stopAllAgents();
  rmSync(home, { recursive: true, force: true });
});

describe('gaxx ui', () => {
  it('refuses --fleet with --agent (USAGE) and a non-loopback address (CONFIG_INVALID)', async () => {
    expect((await gaxx(['ui', '--fleet', 'a', '--agent', agent.address])).code).toBe(exitCodeFor('USAGE'));
    expect((await gaxx(['ui', '--agent', agent.address, '--listen', '0.0.0.0:0'])).code).toBe(exitCodeFor('CONFIG_INVALID'));
    expect((await gaxx(['ui', '--agent', agent.address, '--interval', '5'])).code).toBe(exitCodeFor('USAGE'));
  });

  it('serves an --agent list, prints the URL with its token, collects the agent, and stops on Ctrl-C', async () => {
    const ui = spawnGaxx(['ui', '--agent', `${agent.address}/${agent.metricsPort}`, '--listen', '127.0.0.1:0', '--interval', '300ms', '--json'], { home });
    const line = await ui.line('stdout', () => true);
    const { url, served } = JSON.parse(line) as { url: string; served: string };
    expect(served).toBe('here');
    const u = new URL(url);
    expect(u.hostname).toBe('127.0.0.1');
    expect(u.searchParams.get('token')?.length).toBeGreaterThanOrEqual(40);
    expect((await fetch(`${u.origin}/`)).status).toBe(401);
    expect((await fetch(url)).status).toBe(200);
    expect((await fetch(`${u.origin}/assets/uPlot.iife.min.js?token=${u.searchParams.get('token')}`)).status).toBe(200);
    // The monitor certificate was issued into the state dir, its key private.
    expect(statSync(join(home, 'state', 'monitor', 'certs', 'key.pem')).mode & 0o077).toBe(0);
    const metricsHasAgent = async () => /^up\{[^}]*host="127\.0\.0\.1:\d+"[^}]*\} 1$/m.test(await (await fetch(`${u.origin}/metrics`)).text());
    await expect.poll(metricsHasAgent, { timeout: 30_000 }).toBe(true);
    ui.kill('SIGINT');
    expect((await ui.done).code).toBe(0);
  });
});
