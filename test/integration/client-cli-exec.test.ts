// `gaxx exec` (the built CLI) against the real built agent, with a GAXX_HOME whose CA issued the agent cert.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_EXEC_STDIN_BYTES } from '../../cli/exec-stdin.js';
import { exitCodeFor } from '../../proto/index.js';
import { loadCertDir } from '../../certs/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { runGaxx, spawnGaxx, stopAllGaxx, type CliRun } from '../helpers/cli.js';
import { eventually } from '../helpers/poll.js';

let home: string;
let agent: AgentProcess;

/** Runs the built CLI with `input` piped to its stdin (an empty pipe when none). */
function gaxx(args: string[], input?: string | Buffer): Promise<CliRun> {
  return runGaxx(args, { home, ...(input === undefined ? {} : { input }) });
}

async function agentInfo(): Promise<{ started: number; running: number }> {
  const client = AgentClient.connect({ address: agent.address }, loadCertDir(join(home, 'config', 'operator')));
  try {
    const i = await client.info();
    return { started: Number(i.tasksStartedTotal), running: i.runningTasks };
  } finally {
    client.close();
  }
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
  await stopAllGaxx();
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

  it('--json prints one result object, in the shape of gaxx run --json; binary output as base64', async () => {
    const r = await gaxx(['exec', '--agent', agent.address, '--json', '--task-id', 'json-1', '--', 'sh', '-c', 'printf out; exit 4']);
    expect(r.code).toBe(4);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ taskId: 'json-1', host: agent.address, outcome: 'failed', exitCode: 4, signal: null, attempts: 1, stdout: 'out', stderr: '' });
    for (const k of ['runId', 'reason', 'durationMs', 'stdoutBytes', 'stderrBytes', 'truncated', 'attached', 'replayed', 'finishedAt'])
      expect(j).toHaveProperty(k);
    const bin = JSON.parse((await gaxx(['exec', '--agent', agent.address, '--json', '--', 'printf', '\\377\\000\\001'])).stdout);
    expect(Buffer.from(bin.stdoutBase64, 'base64')).toEqual(Buffer.from([0xff, 0, 1]));
    expect(bin.stdout).toBeUndefined();
  });

  it('an agent refusal exits with its code through the funnel', async () => {
    // A task id the agent knows with another command: only the agent can tell.
    const first = await gaxx(['exec', '--agent', agent.address, '--task-id', 'spec-1', '--', 'true']);
    expect(first.code, first.stderr).toBe(0);
    const r = await gaxx(['exec', '--agent', agent.address, '--task-id', 'spec-1', '--', 'false']);
    expect(r.code, r.stderr).toBe(exitCodeFor('TASK_SPEC_MISMATCH'));
    expect(r.stderr).toMatch(/^gaxx: agent .*\[TASK_SPEC_MISMATCH\]\n$/);
  });

  it('an env name no agent would take is USAGE before anything is sent, as the agent words it', async () => {
    const r = await gaxx(['exec', '--agent', agent.address, '--env', 'BAD-NAME=1', '--', 'true']);
    expect(r.code).toBe(exitCodeFor('USAGE'));
    expect(r.stderr).toMatch(/^gaxx: --env: env\.BAD-NAME: env names are .*\[USAGE\]\n$/);
  });

  it('a --task-id no agent would take is USAGE before anything is sent', async () => {
    const r = await gaxx(['exec', '--agent', agent.address, '--task-id', 'bad id!', '--', 'true']);
    expect(r.code).toBe(exitCodeFor('USAGE'));
    expect(r.stderr).toMatch(/^gaxx: --task-id 'bad id!' must be 1-128 characters of \[A-Za-z0-9._-\], not \. or \.\. .*\[USAGE\]\n$/);
  });
});

describe('gaxx exec stdin', () => {
  it('sends piped stdin to the remote command', async () => {
    const r = await gaxx(['exec', '--agent', agent.address, '--', 'wc', '-l'], 'a\nb\n');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('2');
  });

  it('passes binary stdin through unchanged', async () => {
    const bytes = Buffer.from([0, 255, 10, 13, 128, 1]);
    const r = await gaxx(['exec', '--agent', agent.address, '--', 'od', '-An', '-tx1'], bytes);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split(/\s+/)).toEqual(['00', 'ff', '0a', '0d', '80', '01']);
  });

  it('--stdin FILE sends the file; --stdin - reads standard input', async () => {
    const file = join(home, 'input.txt');
    writeFileSync(file, 'from file\n');
    const f = await gaxx(['exec', '--agent', agent.address, '--stdin', file, '--', 'cat'], 'ignored\n');
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout).toBe('from file\n');
    const d = await gaxx(['exec', '--agent', agent.address, '--stdin', '-', '--', 'cat'], 'from pipe\n');
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toBe('from pipe\n');
  });

  it('--no-stdin sends nothing even when stdin is piped', async () => {
    const r = await gaxx(['exec', '--agent', agent.address, '--no-stdin', '--', 'cat'], 'not sent\n');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('a missing --stdin FILE is NOT_FOUND; --stdin with --no-stdin is USAGE', async () => {
    const missing = await gaxx(['exec', '--agent', agent.address, '--stdin', join(home, 'nope'), '--', 'cat']);
    expect(missing.code).toBe(exitCodeFor('NOT_FOUND'));
    expect(missing.stderr).toMatch(/\[NOT_FOUND\]\n$/);
    const both = await gaxx(['exec', '--agent', agent.address, '--stdin', '-', '--no-stdin', '--', 'cat']);
    expect(both.code).toBe(exitCodeFor('USAGE'));
  });

  it('input over the limit is refused before anything reaches the agent, which keeps serving', async () => {
    const before = await agentInfo();
    const big = Buffer.alloc(MAX_EXEC_STDIN_BYTES + 1, 0x61);
    const piped = await gaxx(['exec', '--agent', agent.address, '--', 'wc', '-c'], big);
    expect(piped.code).toBe(exitCodeFor('INVALID_ARGUMENT'));
    expect(piped.stderr).toMatch(/^gaxx: .*\[INVALID_ARGUMENT\]\n$/);
    expect(piped.stdout).toBe('');
    const file = join(home, 'big.bin');
    writeFileSync(file, big);
    const fromFile = await gaxx(['exec', '--agent', agent.address, '--stdin', file, '--', 'wc', '-c']);
    expect(fromFile.code).toBe(exitCodeFor('INVALID_ARGUMENT'));
    expect((await agentInfo()).started).toBe(before.started);
    // Exactly the limit still fits in one request.
    const ok = await gaxx(['exec', '--agent', agent.address, '--', 'wc', '-c'], big.subarray(0, MAX_EXEC_STDIN_BYTES));
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe(String(MAX_EXEC_STDIN_BYTES));
  });

  it('a terminal on stdin is not read: the command runs at once with empty stdin', async () => {
    // script(1) gives the CLI a pseudo-terminal as stdin that never reaches end-of-file.
    const run = spawnGaxx(['exec', '--agent', agent.address, '--', 'sh', '-c', 'cat; echo done'], { home, terminal: true });
    // A deadline: a CLI that waited for the terminal's end-of-file would never exit.
    const timer = setTimeout(() => run.kill('SIGKILL'), 20_000);
    try {
      const r = await run.done;
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('done');
    } finally {
      clearTimeout(timer);
      run.kill('SIGKILL');
    }
  });
});

describe('gaxx exec and Ctrl-C', () => {
  it('an agent that goes away while its task runs: the end is unknown (exit 12), not "no agent answering"; the output that came is kept', async () => {
    // An agent of its own, killed with -9 once the CLI has printed its task's output (its tasks
    // go with it). Human output only: a --json CLI prints nothing before its end, so nothing
    // would mark that it had the task's Started when the agent went (its result's shape is
    // result-json's unit test).
    const own = await startAgent({ certsDir: join(home, 'agent-certs') });
    const taskId = 'gone-1';
    const run = spawnGaxx(['exec', '--agent', own.address, '--task-id', taskId, '--', 'sh', '-c', 'printf start; exec sleep 60'], { home });
    try {
      expect(await eventually(() => run.stdout().includes('start'), 15_000)).toBe(true);
      own.kill('SIGKILL');
      await own.exited;
      const r = await run.done;
      expect(r.code, r.stderr).toBe(exitCodeFor('UNAVAILABLE'));
      expect(r.stdout).toBe('start');
      // The partial line is ended before the error.
      expect(r.stderr).toMatch(new RegExp(`^\\ngaxx: agent ${own.address} went away while task ${taskId} ran \\(pid \\d+\\): its end is unknown`));
    } finally {
      run.kill('SIGKILL');
    }
  });

  it('the first SIGINT cancels the remote task and exits 130', async () => {
    const run = spawnGaxx(['exec', '--agent', agent.address, '--task-id', 'ctrl-c-1', '--', 'sh', '-c', 'echo ready; exec sleep 30'], { home });
    try {
      await run.line('stdout', (l) => l.includes('ready'), 15_000);
      run.kill('SIGINT');
      expect((await run.done).code).toBe(130);
    } finally {
      run.kill('SIGKILL');
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
