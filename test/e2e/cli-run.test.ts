// The built CLI's `gaxx run` against real agents, with the embedded redis-server of GAXX_HOME.
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadCertDir } from '../../certs/index.js';
import { exitCodeFor } from '../../proto/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { acquireEmbeddedRedis } from '../../scheduler/index.js';
import { markerDir, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { jsonLines, runGaxx, spawnGaxx, stopAllGaxx, type CliRun, type GaxxExit } from '../helpers/cli.js';
import { homeAgentCerts, initHome } from '../helpers/cli-world.js';
import { taskGate } from '../helpers/gate.js';
import { startRedis } from '../helpers/redis.js';

let home: string;
let agents: AgentProcess[];

const gaxx = (args: string[]): Promise<CliRun> => runGaxx(args, { home });

beforeAll(async () => {
  home = await initHome('gxr-');
  const certs = await homeAgentCerts(home);
  agents = await Promise.all([0, 1].map(() => startAgent({ certsDir: certs })));
});

/** The agents' running task counts, asked with the operator certificate. */
async function runningTasks(): Promise<number[]> {
  const creds = loadCertDir(join(home, 'config', 'operator'));
  return Promise.all(
    agents.map(async (a) => {
      const c = AgentClient.connect({ address: a.address }, creds);
      try {
        return (await c.info()).runningTasks;
      } finally {
        c.close();
      }
    }),
  );
}

/** Starts `gaxx run` as a child we can signal; resolves once both agents run its tasks. */
async function startedRun(args: string[]): Promise<{ sigint: () => void; done: Promise<GaxxExit> }> {
  const run = spawnGaxx(['run', ...args], { home });
  for (let i = 0; i < 300 && (await runningTasks()).some((n) => n === 0); i++) await sleep(50);
  expect(await runningTasks(), run.stderr()).toEqual([1, 1]);
  return { sigint: () => run.kill('SIGINT'), done: run.done };
}

afterAll(async () => {
  await stopAllGaxx();
  await stopAllAgents();
  // A test that kills `gaxx run` or the daemon leaves a dead user of the embedded redis-server;
  // one more acquire/release prunes it and stops the server, before its dir goes away.
  if (existsSync(join(home, 'state', 'redis'))) await (await acquireEmbeddedRedis(join(home, 'state'))).release();
  rmSync(home, { recursive: true, force: true });
});

describe('gaxx run', () => {
  it('runs one task per agent through the queue and prints each host', async () => {
    const r = await gaxx(['run', '--agent', agents.map((a) => a.address).join(','), '--', 'echo', 'hello']);
    expect(r.code, r.stderr).toBe(0);
    for (const a of agents) {
      expect(r.stdout).toContain(`== ${a.address}: succeeded (exit 0`);
      // Several hosts: each output line carries its host.
      expect(r.stdout.split('\n')).toContain(`${a.address}: hello`);
    }
    // The embedded redis-server ran on a 0700 socket dir and stopped with its last user.
    expect(statSync(join(home, 'state', 'redis')).mode & 0o777).toBe(0o700);
    expect(existsSync(join(home, 'state', 'redis', 'redis.sock'))).toBe(false);
    expect(existsSync(join(home, 'state', 'scheduler', 'certs', 'cert.pem'))).toBe(true);
  });

  it('gaxx exec cut at --output-cap: the note starts a line of its own after output cut mid-line', async () => {
    const a = agents[0] as AgentProcess;
    const note = 'gaxx: output cut at the output cap: the agent stopped the task there (--output-cap)\n';
    // Each task is still running when the agent stops it (it waits after its output).
    const cut = await gaxx(['exec', '--agent', a.address, '--no-stdin', '--output-cap', '3', '--', 'sh', '-c', 'echo hello world; exec sleep 60']);
    expect(cut.stdout).toBe('hel');
    expect(cut.stderr).toBe(`\n${note}`);
    // Output cut right after a newline gets no blank line before the note. The task catches the
    // SIGTERM and exits 0.
    const line = await gaxx([
      'exec',
      '--agent',
      a.address,
      '--no-stdin',
      '--output-cap',
      '3',
      '--',
      'sh',
      '-c',
      'trap "exit 0" TERM; printf "ab\\ncdef"; sleep 60 & wait',
    ]);
    expect(line.stdout).toBe('ab\n');
    expect(line.stderr).toBe(note);
    // Stopped by the agent, the task never exits 0, even when it caught the signal and exited 0.
    expect([cut.code, line.code]).toEqual([143, 143]);
  });

  it('gaxx exec whose reader leaves while its task runs cancels the task and says so', async () => {
    const a = agents[0] as AgentProcess;
    const r = await runGaxx(['exec', '--agent', a.address, '--no-stdin', '--', 'yes'], { home, redirect: '| head -c 1 >/dev/null' });
    expect(r.stderr).toContain('gaxx: stdout was closed (its reader went away): cancelling');
    for (let i = 0; i < 300 && (await runningTasks())[0] !== 0; i++) await sleep(50);
    expect((await runningTasks())[0]).toBe(0);
  });

  it('gaxx exec --json whose reader leaves after the first byte of its result: the task had ended, and the stop says there is nothing to cancel', async () => {
    const a = agents[0] as AgentProcess;
    // The result (its 200 KB of output: more than a pipe holds) is printed once the task's exit is here.
    const big = ['sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x'];
    const r = await runGaxx(['exec', '--agent', a.address, '--no-stdin', '--json', '--', ...big], { home, redirect: '| head -c 1 >/dev/null' });
    expect(r.stderr).toContain('gaxx: stdout was closed (its reader went away): the task already ended: nothing to cancel');
    expect(r.stderr).not.toContain('cancelling');
  });

  it('gaxx exec of a task that catches the SIGTERM of its --timeout and exits 0 exits 143, not 0', async () => {
    const a = agents[0] as AgentProcess;
    const r = await gaxx(['exec', '--agent', a.address, '--no-stdin', '--timeout', '1s', '--', 'sh', '-c', 'trap "echo caught; exit 0" TERM; sleep 60 & wait']);
    expect(r.stdout).toBe('caught\n');
    expect(r.stderr).toContain('gaxx: task ended by the agent (timeout)');
    expect(r.code).toBe(143);
  });

  it("--output-cap stops a task whose output passes it (killed, exit 1, its first BYTES kept); run defaults to 1M, exec to the agent's 16M", async () => {
    const a = agents[0] as AgentProcess;
    // `then`: what the task does after its output; a task past its cap waits there, so that the
    // agent's stop finds it running (one that ended on its own first keeps its own outcome).
    const task = async (args: string[], bytes: number, then = '; exec sleep 60'): Promise<{ code: number; task: Record<string, unknown> }> => {
      const r = await gaxx(['run', '--json', '--agent', a.address, ...args, '--', 'sh', '-c', `yes | head -c ${bytes}${then}`]);
      const task = jsonLines(r.stdout).find((l) => l.type === 'task');
      return { code: r.code, task: task ?? {} };
    };
    const capped = await task(['--output-cap', '1k'], 5000);
    expect(capped.code).toBe(1);
    expect(capped.task).toMatchObject({ outcome: 'killed', reason: 'output_cap', truncated: true, outputCapped: true, stdoutBytes: 1024 });
    expect(capped.task.stdout).toHaveLength(1024);
    // The default: 1 MiB passes, one byte more is stopped.
    expect((await task([], 1024 * 1024, '')).task).toMatchObject({ outcome: 'succeeded', truncated: false, outputCapped: false });
    expect((await task([], 1024 * 1024 + 1)).task).toMatchObject({ outcome: 'killed', reason: 'output_cap', stdoutBytes: 1024 * 1024 });
    // The same command through exec gets the agent's default, 16 MiB.
    const exec = await gaxx(['exec', '--json', '--agent', a.address, '--no-stdin', '--', 'sh', '-c', `yes | head -c ${1024 * 1024 + 1}`]);
    expect(exec.code, exec.stderr).toBe(0);
    expect(JSON.parse(exec.stdout)).toMatchObject({ outcome: 'succeeded', truncated: false, stdoutBytes: 1024 * 1024 + 1 });
    // The human summary line says why the task was killed.
    const human = await gaxx(['run', '--agent', a.address, '--output-cap', '1k', '--', 'yes']);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain('stopped at the output cap (--output-cap)');
  });

  it('--json prints one object per task; exit 1 when a command fails', async () => {
    const r = await gaxx(['run', '--json', '--agent', agents.map((a) => a.address).join(','), '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r.code, r.stderr).toBe(1);
    const all = jsonLines(r.stdout);
    // The run id first, one object per task, the summary last.
    expect(all[0]).toMatchObject({ type: 'run', mode: 'each-host' });
    expect(all.at(-1)).toMatchObject({ type: 'summary', runId: all[0]?.runId, total: 2, failed: 2 });
    // Where the time went is reported only when asked (--timings).
    expect(all.at(-1)).not.toHaveProperty('timings');
    const lines = all.filter((l) => l.type === 'task');
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatchObject({ runId: all[0]?.runId, outcome: 'failed', exitCode: 3, attempts: 1, stdout: 'out\n', stderr: 'err\n' });
    expect(new Set(lines.map((l) => l.host))).toEqual(new Set(agents.map((a) => a.address)));
  });

  it('--timings says where the time went: each moment since the process started, in order, and who dispatched', async () => {
    const order = ['nodeReadyMs', 'startedMs', 'redisMs', 'enqueuedMs', 'firstResultMs', 'lastResultMs', 'doneMs'] as const;
    const json = await gaxx(['run', '--json', '--timings', '--agent', agents.map((a) => a.address).join(','), '--', 'true']);
    expect(json.code, json.stderr).toBe(0);
    const summary = JSON.parse(json.stdout.trim().split('\n').at(-1) as string) as { type: string; timings: Record<string, number | string> };
    expect(summary.type).toBe('summary');
    const t = summary.timings;
    expect(t.worker).toBe('this process');
    const moments = order.map((k) => t[k]);
    for (const m of moments) expect(typeof m).toBe('number');
    expect([...(moments as number[])].sort((a, b) => a - b)).toEqual(moments);
    expect(moments[0]).toBeGreaterThan(0);
    // The human form: one line on stderr, the same moments in the same order.
    const human = await gaxx(['run', '--timings', '--agent', agents.map((a) => a.address).join(','), '--', 'true']);
    expect(human.code, human.stderr).toBe(0);
    const line = human.stderr.split('\n').find((l) => l.startsWith('gaxx: timings')) ?? '';
    expect(line).toMatch(
      /^gaxx: timings \(ms since start\): node up \d+, gaxx loaded \d+, redis \d+, enqueued \d+, first result \d+, last result \d+, done \d+; dispatched by this process$/,
    );
    const numbers = [...line.matchAll(/ (\d+)(?=,|;)/g)].map((m) => Number(m[1]));
    expect(numbers).toHaveLength(7);
    expect([...numbers].sort((a, b) => a - b)).toEqual(numbers);
  });

  it('exits with the UNAVAILABLE code when an agent cannot be reached', async () => {
    const r = await gaxx(['run', '--retries', '1', '--agent', `${(agents[0] as AgentProcess).address},127.0.0.1:1`, '--', 'true']);
    expect(r.code, r.stderr).toBe(exitCodeFor('UNAVAILABLE'));
    expect(r.stdout).toContain('== 127.0.0.1:1: unreachable');
  });

  it('gaxx exec --json whose agent is killed mid-task: unknown, with the time it was seen running and the bytes that came', async () => {
    const gone = await startAgent({ certsDir: await homeAgentCerts(home) });
    const marks = markerDir('exec-lost');
    const exec = spawnGaxx(['exec', '--agent', gone.address, '--json', '--', 'sh', '-c', `echo start; touch ${marks}/on; exec sleep 60`], { home });
    await vi.waitFor(() => expect(existsSync(join(marks, 'on'))).toBe(true), { timeout: 30_000, interval: 20 });
    gone.kill('SIGKILL');
    await gone.exited;
    const r = await exec.done;
    rmSync(marks, { recursive: true, force: true });
    expect(r.code, r.stderr).toBe(exitCodeFor('UNAVAILABLE'));
    const res = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(res).toMatchObject({ outcome: 'unknown', reason: 'UNAVAILABLE', host: gone.address, startedOn: [gone.address], stderrBytes: 0 });
    expect(res.pid).toBeGreaterThan(0);
    // It ran from its Started to the kill: not 0 ms; and its byte count is that of the output shown.
    expect(res.durationMs).toBeGreaterThan(0);
    expect(res.stdoutBytes).toBe(Buffer.byteLength((res.stdout as string | undefined) ?? ''));
  });

  it('leaves the work to a running `gaxx scheduler`, which drains and stops its redis on SIGTERM', async () => {
    const daemon = spawnGaxx(['scheduler', '--metrics-listen', '127.0.0.1:0', '--ui-listen', '127.0.0.1:0', '--concurrency', '8'], { home });
    try {
      const started = JSON.parse(await daemon.line('stderr', (l) => l.includes('"scheduler started"'))) as Record<string, unknown>;
      const stats = new Redis({ path: join(home, 'state', 'redis', 'redis.sock'), lazyConnect: true });
      const connections = async (): Promise<number> => Number(/total_connections_received:(\d+)/.exec(await stats.info('stats'))?.[1]);
      let made: number;
      let r: CliRun;
      try {
        const before = await connections();
        r = await gaxx(['run', '--timings', '--agent', agents.map((a) => a.address).join(','), '--', 'true']);
        expect(r.code, r.stderr).toBe(0);
        made = (await connections()) - before;
      } finally {
        stats.disconnect();
      }
      // `gaxx run` connects three times: a PING that finds the embedded server up, one connection
      // for its record and the queue, one for the wait's blocking reads; the daemon once (the
      // next run's spare connection), or twice when its spare was not ready yet as the run came
      // (a loaded machine): the run's worker then duplicated its own, and the spare is made again.
      expect(made).toBeGreaterThan(0);
      expect(made).toBeLessThanOrEqual(5);
      expect(r.stderr).toMatch(
        /^gaxx: timings \(ms since start\): node up \d+, gaxx loaded \d+, redis \d+, enqueued \d+, .*; dispatched by the scheduler daemon$/m,
      );
      const metrics = await fetch(`http://${started.metrics as string}/metrics`).then((x) => x.text());
      expect(metrics).toMatch(/gaxx_scheduler_tasks_total\{outcome="succeeded"\} 2/);
      // The run released its use of the embedded redis; the daemon still holds it.
      expect(existsSync(join(home, 'state', 'redis', 'redis.sock'))).toBe(true);
      daemon.kill('SIGTERM');
      expect((await daemon.done).code).toBe(0);
      expect(existsSync(join(home, 'state', 'redis', 'redis.sock'))).toBe(false);
    } finally {
      daemon.kill('SIGKILL');
      await daemon.done;
    }
  });

  it('`gaxx scheduler` refuses a metrics address in use (FAILED_PRECONDITION) and leaves nothing running', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (busy.address() as { port: number }).port;
      const r = await gaxx(['scheduler', '--metrics-listen', `127.0.0.1:${port}`]);
      expect(r.code, r.stderr).toBe(exitCodeFor('FAILED_PRECONDITION'));
      expect(existsSync(join(home, 'state', 'redis', 'redis.sock'))).toBe(false);
    } finally {
      busy.close();
    }
  });

  it("prints a long task's output as it arrives, before the task ends", async () => {
    const a = agents[0] as AgentProcess;
    // The task prints 'second' only once the test has seen 'first'.
    const gate = taskGate();
    const run = spawnGaxx(['run', '--agent', a.address, '--', 'sh', '-c', `echo first; ${gate.wait}; echo second`], { home });
    try {
      await run.line('stdout', (l) => l === 'first');
      // 'first' showed while the task still ran: no 'second', no summary line yet.
      expect(run.stdout()).toBe('first\n');
    } finally {
      gate.open();
    }
    const r = await run.done;
    gate.remove();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`first\nsecond\n== ${a.address}: succeeded (exit 0, ${/(\d+) ms/.exec(r.stdout)?.[1]} ms)\n`);
  });

  it('Ctrl-C cancels the run: tasks stopped on the agents, reported cancelled, exit 130', async () => {
    const run = await startedRun(['--agent', agents.map((a) => a.address).join(','), '--', 'sleep', '30']);
    run.sigint();
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    for (const a of agents) expect(r.stdout).toContain(`== ${a.address}: cancelled`);
    expect(r.stderr).toContain('cancelled');
    expect(await runningTasks()).toEqual([0, 0]);
  });

  it('Ctrl-C with --json: one object per task, outcome cancelled', async () => {
    const run = await startedRun(['--json', '--agent', agents.map((a) => a.address).join(','), '--', 'sleep', '30']);
    run.sigint();
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    const lines = jsonLines(r.stdout).filter((l) => l.type === 'task');
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatchObject({ outcome: 'cancelled', reason: 'cancelled', attempts: 1 });
    expect(await runningTasks()).toEqual([0, 0]);
  });

  it('a second Ctrl-C quits at once with 130', async () => {
    const run = await startedRun(['--agent', agents.map((a) => a.address).join(','), '--', 'sleep', '2']);
    run.sigint();
    run.sigint();
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    // The tasks (2 s) end on their own if the first Ctrl-C's cancel did not reach them.
    for (let i = 0; i < 100 && (await runningTasks()).some((n) => n > 0); i++) await sleep(50);
    expect(await runningTasks()).toEqual([0, 0]);
  });

  it('`gaxx scheduler` explains its flags and refuses bad ones (USAGE) before starting anything', async () => {
    const help = await gaxx(['scheduler', '--help']);
    expect(help.code).toBe(0);
    for (const f of ['--concurrency', '--metrics-listen', '--certs', '--drain', '--lock', '--renew-interval', 'GAXX_SCHEDULER_'])
      expect(help.stdout).toContain(f);
    expect((await gaxx(['scheduler', '--bogus'])).code).toBe(exitCodeFor('USAGE'));
    expect((await gaxx(['scheduler', '--concurrency', '0'])).code).toBe(exitCodeFor('USAGE'));
    expect((await gaxx(['scheduler', '--drain', '30'])).code).toBe(exitCodeFor('USAGE'));
    expect((await gaxx(['scheduler', '--metrics-listen', 'nonsense'])).code).toBe(exitCodeFor('USAGE'));
  });

  it('refuses a plaintext, password-less Redis beyond loopback (REDIS_INSECURE) before queueing anything; loopback works', async () => {
    const ran = markerDir('cli-run');
    const marker = join(ran, 'insecure');
    const agent = (agents[0] as AgentProcess).address;
    const argv = ['--agent', agent, '--', 'sh', '-c', 'echo ran >> "$0"', marker];
    // A documentation-range address: refused while parsing the URL, never dialled.
    const bad = await gaxx(['run', '--redis-url', 'redis://192.0.2.10:6379', ...argv]);
    expect(bad.code).toBe(exitCodeFor('REDIS_INSECURE'));
    expect(bad.stderr).toContain('[REDIS_INSECURE]');
    expect(existsSync(marker)).toBe(false);
    const redis = await startRedis({ tcp: true });
    try {
      const good = await gaxx(['run', '--redis-url', `redis://127.0.0.1:${redis.port as number}`, ...argv]);
      expect(good.code, good.stderr).toBe(0);
      expect(readFileSync(marker, 'utf8')).toBe('ran\n');
    } finally {
      await redis.destroy();
    }
  });

  it('refuses a run without an agent or a command (USAGE)', async () => {
    expect((await gaxx(['run', '--', 'true'])).code).toBe(exitCodeFor('USAGE'));
    expect((await gaxx(['run', '--agent', (agents[0] as AgentProcess).address])).code).toBe(exitCodeFor('USAGE'));
  });
});
