// A Ctrl-C while a command waits for a Redis that accepted its connection and never answers
// (redis-server stopped by SIGSTOP: a paused machine, a hung server). Every command that winds
// down on a stop (run, a task list, --resume, cp to a fleet, ui, the scheduler daemon, spawn)
// ends at once with CANCELLED (130), saying what it was waiting for, instead of waiting out
// the 5 s readiness bound and then failing with REDIS_UNAVAILABLE (12). And a Ctrl-C while a
// run's first writes wait on a Redis that holds them (CLIENT PAUSE WRITE) is said at once
// (`stopping`), not once Redis answers; the run is then cancelled when it does. The same for
// the embedded redis-server of a home, running and not answering: the commands wait for it (up
// to 30 s, never starting a second one) until a stop, which ends the wait at once. A scheduler
// daemon drained while its Redis does not answer ends too (its jobs in flight not handed back:
// their locks expire), rather than wait for Redis for ever. And `gaxx ui`, asking a running
// daemon's dashboard that accepted the connection and does not answer whether it serves, ends at
// once on a stop too. Real redis-server, agent and the built CLI.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimMark, exitCodeFor } from '../../proto/index.js';
import { acquireEmbeddedRedis, type EmbeddedRedis } from '../../scheduler/redis/embedded-redis.js';
import { readFileSafe } from '../../scheduler/redis/redis-server-process.js';
import { clearDashboardUrl, writeDashboardUrl } from '../../scheduler/ui/url-file.js';
import { auditEvents, startAgent, stopAllAgents } from '../helpers/agent.js';
import { spawnGaxx, stopAllGaxx, type GaxxProcess } from '../helpers/cli.js';
import { homeAgentCerts, initHome } from '../helpers/cli-world.js';
import { eventually } from '../helpers/poll.js';
import { connectedTo } from '../helpers/ports.js';
import { startRedis, withRedisAt, type TestRedis } from '../helpers/redis.js';

let home: string;
let redis: TestRedis;
let stopped: number | undefined;
/** A Redis that answers, for the runs whose writes it holds back. */
let holding: TestRedis | undefined;
/** Another home, whose embedded redis-server this test holds and stops. */
let embeddedHome: string | undefined;
let embedded: EmbeddedRedis | undefined;
let embeddedPid: number | undefined;
/** The Redis of the drained daemons, stopped under them. */
let drained: TestRedis | undefined;
let drainedPid: number | undefined;

beforeAll(async () => {
  home = await initHome('gxhs-');
  redis = await startRedis({ tcp: true });
  stopped = redis.pid() as number;
  process.kill(stopped, 'SIGSTOP');
});

afterAll(async () => {
  await stopAllGaxx();
  await stopAllAgents();
  for (const pid of [stopped, embeddedPid, drainedPid]) if (pid !== undefined) process.kill(pid, 'SIGCONT');
  await redis?.destroy();
  await holding?.destroy();
  await drained?.destroy();
  await embedded?.release();
  for (const dir of [home, embeddedHome]) if (dir) rmSync(dir, { recursive: true, force: true });
});

const cases: Array<[string, string[]]> = [
  ['gaxx run', ['run', '--agent', '127.0.0.1:1', '--', 'true']],
  ['gaxx run --tasks', ['run', '--agent', '127.0.0.1:1', '--tasks', '-', '--', 'echo']],
  ['gaxx run --resume', ['run', '--resume', 'nosuchrun']],
  ['gaxx cp to a fleet', ['cp', '/etc/hostname', 'nosuchfleet:/tmp/x']],
  ['gaxx ui', ['ui', '--listen', '127.0.0.1:0']],
  ['gaxx scheduler', ['scheduler']],
  ['gaxx spawn --ttl', ['spawn', '--provider', 'local', '--fleet', 'hs', '--count', '1', '--ttl', '1h']],
];

describe('a stop while a command waits for a Redis that does not answer', () => {
  it.each(cases)('%s ends at once: CANCELLED (130), not REDIS_UNAVAILABLE after the readiness bound', { timeout: 60_000 }, async (_name, args) => {
    const port = redis.port as number;
    // The previous case's connection is gone (its process exited): this one's is the command's.
    expect(await eventually(() => !connectedTo(port), 10_000, 20)).toBe(true);
    const cli = spawnGaxx(args, { home, env: { GAXX_REDIS_URL: redis.url, GAXX_SCHEDULER_METRICS_LISTEN: '' } });
    // Connected, its readiness check unanswered: the command waits for Redis now.
    expect(await eventually(() => connectedTo(port), 30_000, 20)).toBe(true);
    cli.kill('SIGINT');
    const exit = await cli.done;
    expect(exit.stderr).toContain(`stopped while waiting for redis at ${redis.url} to be ready [CANCELLED]`);
    expect(exit.stderr).not.toContain('REDIS_UNAVAILABLE');
    expect(exit.code).toBe(exitCodeFor('CANCELLED'));
  });
});

/** The runs whose first writes a Redis holds back (CLIENT PAUSE WRITE) are stopped in. */
const heldRuns: Array<[string, string[]]> = [
  ['gaxx run', ['run', '--agent', '127.0.0.1:1', '--', 'true']],
  ['gaxx run --tasks', ['run', '--agent', '127.0.0.1:1', '--tasks', 'TASKS', '--', 'echo']],
];

/**
 * `args` started on a Redis that holds every write (90 s, or until `url` is unpaused), stopped
 * (SIGINT) once its id is printed (before its record is written: the record's write waits now).
 */
async function stoppedWhileHeld(args: string[], env: Record<string, string> = {}): Promise<{ cli: GaxxProcess; url: string; runId: string }> {
  holding ??= await startRedis();
  const url = holding.url;
  const list = join(home, 'tasks.txt');
  writeFileSync(list, 'a\nb\n');
  await withRedisAt(url, (r) => r.call('CLIENT', 'PAUSE', '90000', 'WRITE'));
  const cli = spawnGaxx(
    args.map((a) => (a === 'TASKS' ? list : a)),
    { home, env: { GAXX_REDIS_URL: url, ...env } },
  );
  try {
    const runId = (await cli.line('stderr', (l) => /^gaxx: run \S+$/.test(l))).slice('gaxx: run '.length);
    cli.kill('SIGINT');
    return { cli, url, runId };
  } catch (e) {
    await withRedisAt(url, (r) => r.call('CLIENT', 'UNPAUSE'));
    throw e;
  }
}

describe("a stop while a run's first writes wait on a Redis that holds them", () => {
  it.each(heldRuns)('%s says `stopping` at once, and is cancelled once Redis takes writes again', { timeout: 120_000 }, async (_name, args) => {
    const { cli, url } = await stoppedWhileHeld(args);
    try {
      // Said while Redis still holds the writes (before, nothing was said until it took them).
      await cli.line('stderr', (l) => l === 'gaxx: stopping (press Ctrl-C again to quit)', 30_000);
      await withRedisAt(url, (r) => r.call('CLIENT', 'UNPAUSE'));
      const exit = await cli.done;
      expect(exit.stderr).toMatch(/^gaxx: run \S+ cancelled($|;)/m);
      // One note for the one stop.
      expect(exit.stderr).not.toContain('cancelling');
      expect(exit.code).toBe(exitCodeFor('CANCELLED'));
    } finally {
      await withRedisAt(url, (r) => r.call('CLIENT', 'UNPAUSE'));
    }
  });
});

describe("a stop while a run's first writes wait on a Redis that holds them past the stop's grace", () => {
  it.each(heldRuns)('%s ends CANCELLED (130) without waiting for Redis, and none of its tasks is left to run', { timeout: 120_000 }, async (_name, args) => {
    // Held until the run has ended (its request bound longer than that): its writes, and the cancel it sends behind them, wait in Redis.
    const { cli, url, runId } = await stoppedWhileHeld(args, { GAXX_REDIS_TIMEOUT_MS: '80000' });
    try {
      const exit = await cli.done;
      expect(exit.stderr).toContain('gaxx: stopping (press Ctrl-C again to quit)');
      expect(exit.stderr).toContain(
        `gaxx: run ${runId}: Redis has not answered the run's requests for 5 s since the stop: stopped without waiting longer; a cancel goes to Redis behind its requests, so none of its tasks runs once Redis answers [CANCELLED]`,
      );
      expect(exit.code).toBe(exitCodeFor('CANCELLED'));
    } finally {
      await withRedisAt(url, (r) => r.call('CLIENT', 'UNPAUSE'));
    }
    // Whatever of the run Redis took: no task of it waits to run, or the run is cancelled (every worker checks before it dispatches).
    const [waiting, cancelled] = await withRedisAt(url, async (r) => [await r.llen(`{gaxx}:run.${runId}:wait`), await r.exists(`{gaxx}:run:${runId}:cancel`)]);
    expect(waiting === 0 || cancelled === 1, `waiting ${waiting}, cancel flag ${cancelled}`).toBe(true);
  });
});

describe('a stop while a command waits for the embedded redis-server that runs and does not answer', () => {
  it.each(cases)('%s ends at once: CANCELLED (130), not after the 30 s it waits for a busy server', { timeout: 60_000 }, async (_name, args) => {
    if (!embedded) {
      embeddedHome = await initHome('gxhe-');
      // Held by this test as by a command using it; then stopped: it runs, and answers nothing.
      embedded = await acquireEmbeddedRedis(join(embeddedHome, 'state'));
      process.kill((embeddedPid = Number(readFileSync(join(embedded.dir, 'redis.pid'), 'utf8'))), 'SIGSTOP');
    }
    const lock = join(embedded.dir, 'server.lock');
    const owner = (): string => String(claimMark(readFileSafe(lock))?.pid ?? '');
    // The previous case let go of the server's lock (its process exited).
    expect(await eventually(() => owner() === '', 10_000, 20)).toBe(true);
    const cli = spawnGaxx(args, { home: embeddedHome, env: { GAXX_SCHEDULER_METRICS_LISTEN: '' } });
    // It holds the server's lock while it waits for the server to answer.
    expect(await eventually(() => owner() === String(cli.pid), 30_000, 20)).toBe(true);
    cli.kill('SIGINT');
    const exit = await cli.done;
    expect(exit.stderr).toContain(`stopped while waiting for the embedded redis-server (pid ${embeddedPid}) to answer on ${embedded.socketPath} [CANCELLED]`);
    expect(exit.stderr).not.toContain('UNAVAILABLE');
    expect(exit.code).toBe(exitCodeFor('CANCELLED'));
  });
});

describe('a scheduler daemon drained while its Redis does not answer', () => {
  it.each([
    ['with no task in flight', false],
    ['with a task in flight, past its --drain', true],
  ])('%s: ends, and says so', { timeout: 120_000 }, async (_name, inFlight) => {
    drained ??= await startRedis();
    const env = { GAXX_REDIS_URL: drained.url, GAXX_SCHEDULER_METRICS_LISTEN: '', GAXX_SCHEDULER_UI_LISTEN: '' };
    const daemon = spawnGaxx(['scheduler', '--drain', '1s'], { home, env });
    await daemon.line('stderr', (l) => l.includes('"scheduler started"'));
    if (inFlight) {
      const agent = await startAgent({ certsDir: await homeAgentCerts(home) });
      // Dispatched by the daemon (its heartbeat is there): the task runs on the agent until the end of the test.
      spawnGaxx(['run', '--agent', agent.address, '--', 'sleep', '300'], { home, env });
      expect(await eventually(() => auditEvents(agent.auditLog).some((e) => e.event === 'exec_started'), 60_000, 50)).toBe(true);
    }
    process.kill((drainedPid = drained.pid() as number), 'SIGSTOP');
    try {
      daemon.kill('SIGINT');
      // Before, the drain waited for Redis for ever (its heartbeat's removal, the hand-back).
      const exit = await Promise.race([daemon.done, new Promise<undefined>((r) => setTimeout(r, 60_000, undefined))]);
      expect(exit, 'the drained daemon did not end within 60 s').toBeDefined();
      expect(exit?.stderr).toContain('"scheduler stopped"');
      if (inFlight) expect(exit?.stderr).toContain('the jobs in flight were not handed back (Redis did not answer)');
      expect(exit?.code).toBe(0);
    } finally {
      process.kill(drainedPid, 'SIGCONT');
      drainedPid = undefined;
      await stopAllGaxx();
    }
  });
});

describe("a stop while gaxx ui asks a daemon's dashboard that does not answer", () => {
  it('ends at once: CANCELLED (130), saying what it asked', { timeout: 60_000 }, async () => {
    // A dashboard recorded by a live process (this one), whose server accepts and answers nothing.
    const held = new Set<Socket>();
    let accepted = (): void => undefined;
    const connected = new Promise<void>((resolve) => (accepted = resolve));
    const server = createServer((s) => {
      held.add(s);
      s.on('error', () => undefined);
      accepted();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const stateDir = join(home, 'state');
    writeDashboardUrl(stateDir, `http://127.0.0.1:${port}/?token=t`);
    try {
      const cli = spawnGaxx(['ui'], { home, env: { GAXX_REDIS_URL: redis.url } });
      await connected;
      cli.kill('SIGINT');
      const exit = await cli.done;
      expect(exit.stderr).toContain(`stopped while asking the scheduler daemon's dashboard at 127.0.0.1:${port} whether it serves [CANCELLED]`);
      expect(exit.code).toBe(exitCodeFor('CANCELLED'));
    } finally {
      clearDashboardUrl(stateDir);
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
