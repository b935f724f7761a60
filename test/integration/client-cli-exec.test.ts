// `gaxx exec` (the built CLI) against the real built agent, with a GAXX_HOME whose CA issued the agent cert.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { loadCertDir } from '../../certs/index.js';
import { AgentClient } from '../../scheduler/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';

const MAIN = resolve('dist/cli/main.js');
let home: string;
let agent: AgentProcess;

function gaxx(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH ?? '', GAXX_HOME: home } }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'gaxx-cli-exec-'));
  expect((await gaxx(['init', '--name', 'ops'])).code).toBe(0);
  const certs = join(home, 'agent-certs');
  const issued = await gaxx(['certs', 'issue', '--role', 'agent', '--fleet', 'lab', '--name', 'h1', '--host', '127.0.0.1', '--out', certs]);
  expect(issued.code, issued.stderr).toBe(0);
  agent = await startAgent({ certsDir: certs });
});
afterAll(async () => {
  await stopAllAgents();
  rmSync(home, { recursive: true, force: true });
});

describe('gaxx exec', () => {
  it('streams output and exits with the remote exit code', async () => {
    const r = await gaxx(['exec', '--agent', agent.address, '--', 'sh', '-c', 'echo hi; exit 3']);
    expect(r.stdout).toBe('hi\n');
    expect(r.code).toBe(3);
  });

  it('passes argv untouched (no shell) and stderr to stderr', async () => {
    const r = await gaxx(['exec', '--agent', agent.address, '--', 'sh', '-c', 'echo "$1" >&2', 'x', 'a b;c']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('a b;c\n');
  });

  it('a command killed by a signal exits 128+N', async () => {
    const r = await gaxx(['exec', '--agent', agent.address, '--', 'sh', '-c', 'kill -KILL $$']);
    expect(r.code).toBe(137);
  });

  it('--json prints one result object', async () => {
    const r = await gaxx(['exec', '--agent', agent.address, '--json', '--task-id', 'json-1', '--', 'sh', '-c', 'printf out; exit 4']);
    expect(r.code).toBe(4);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ taskId: 'json-1', exitCode: 4, code: 4, stdout: 'out' });
  });

  it('an agent refusal exits with its code through the funnel', async () => {
    const r = await gaxx(['exec', '--agent', agent.address, '--task-id', 'bad id!', '--', 'true']);
    expect(r.code).toBe(exitCodeFor('INVALID_ARGUMENT'));
    expect(r.stderr).toMatch(/^gaxx: .*\[INVALID_ARGUMENT\]\n$/);
  });
});

describe('gaxx exec and Ctrl-C', () => {
  it('the first SIGINT cancels the remote task and exits 130', async () => {
    const child = spawn(process.execPath, [MAIN, 'exec', '--agent', agent.address, '--task-id', 'ctrl-c-1', '--', 'sh', '-c', 'echo ready; exec sleep 30'], {
      env: { PATH: process.env.PATH ?? '', GAXX_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await new Promise<void>((ready, fail) => {
        const t = setTimeout(() => fail(new Error('no output from gaxx exec')), 15_000);
        child.stdout.on('data', (b: Buffer) => {
          if (b.toString().includes('ready')) {
            clearTimeout(t);
            ready();
          }
        });
      });
      child.kill('SIGINT');
      expect(await exited).toBe(130);
    } finally {
      child.kill('SIGKILL');
    }
    const client = AgentClient.connect({ address: agent.address }, loadCertDir(join(home, 'config', 'operator')));
    try {
      expect(await client.cancel('ctrl-c-1')).toBe(false);
      expect((await client.info()).runningTasks).toBe(0);
    } finally {
      client.close();
    }
  });
});
