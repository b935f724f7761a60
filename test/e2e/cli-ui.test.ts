// The built CLI's `gaxx ui`: serves the dashboard for an --agent list, prints its URL with the
// token, refuses bad flags and a non-loopback address, and stops on Ctrl-C.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa, writeCertDir } from '../../certs/index.js';
import { exitCodeFor } from '../../proto/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { CLI_MAIN } from '../helpers/cli.js';

// The installed bin (the bundle): the page's assets are read from beside it.
const MAIN = CLI_MAIN;
let home: string;
let agent: AgentProcess;
const env = () => ({ PATH: process.env.PATH ?? '', GAXX_HOME: home });

function gaxx(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, ...args], { env: env() }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'gxui-e2e-'));
  const init = await gaxx(['init', '--name', 'alice']);
  expect(init.code, init.stderr).toBe(0);
  const ca = FleetCa.open(join(home, 'config', 'ca'));
  const made = await ca.issue({ identity: { role: 'agent', fleet: 'adhoc', host: 'h1' }, hosts: ['127.0.0.1'] });
  const certs = join(home, 'agent-certs');
  mkdirSync(certs, { mode: 0o700 });
  writeCertDir(certs, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem });
  agent = await startAgent({ certsDir: certs });
});

afterAll(async () => {
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
    const child = spawn(
      process.execPath,
      [MAIN, 'ui', '--agent', `${agent.address}/${agent.metricsPort}`, '--listen', '127.0.0.1:0', '--interval', '300ms', '--json'],
      { env: env(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const line = await new Promise<string>((res, rej) => {
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('\n')) res(out.split('\n')[0] as string);
      });
      void exited.then((code) => rej(new Error(`gaxx ui exited ${code}: ${stderr}`)));
    });
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
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });
});
