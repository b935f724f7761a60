// A Redis that stops answering while a command's connection stays up (stopped, paused, cut off
// without a reset): every command ends, REDIS_UNAVAILABLE (12), saying Redis did not answer,
// within its request bound (--redis-timeout-ms) rather than waiting for ever. The Redis here
// answers the connection's readiness check through a relay that then carries nothing more, so
// the hang comes after the command found Redis ready. A run whose Redis stops under its wait
// ends at --redis-gone-ms, its end included (before, it waited for ever once its wait had
// ended). A Redis that refuses a command (a user without the permission) is REDIS_UNAVAILABLE
// with Redis's reason too, not an internal error. And `--redis-insecure` is honoured by every
// command that uses Redis, not by `gaxx run` alone. Real redis-server, agent and the built CLI.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { auditEvents, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { runGaxx, spawnGaxx, stopAllGaxx, type GaxxProcess } from '../helpers/cli.js';
import { homeAgentCerts, initHome } from '../helpers/cli-world.js';
import { eventually } from '../helpers/poll.js';
import { startRedis, withRedisAt, type TestRedis } from '../helpers/redis.js';
import { TcpRelay } from '../helpers/tcp-relay.js';

let home: string;
let redis: TestRedis;
let relay: TcpRelay;
let agent: AgentProcess;
let stopped: number | undefined;

/** A request other than the readiness check (ioredis sends INFO alone, and waits for its answer). */
const afterReady = (chunk: Buffer): boolean => !/^\*1\r\n\$4\r\ninfo\r\n$/i.test(chunk.toString('latin1'));

beforeAll(async () => {
  home = await initHome('gxrh-');
  redis = await startRedis({ tcp: true });
  relay = await new TcpRelay({ port: redis.port as number }, { holdWhen: afterReady }).start();
  agent = await startAgent({ certsDir: await homeAgentCerts(home) });
});

afterAll(async () => {
  await stopAllGaxx();
  resumeRedis();
  await relay?.close();
  await stopAllAgents();
  await redis?.destroy();
  if (home) rmSync(home, { recursive: true, force: true });
});

/** Through the relay, with a short request bound. */
const hungEnv = (): Record<string, string> => ({
  GAXX_REDIS_URL: `redis://${relay.address}`,
  GAXX_REDIS_TIMEOUT_MS: '1000',
  GAXX_SCHEDULER_METRICS_LISTEN: '',
});

const cases: Array<[string, string[], string?]> = [
  ['gaxx runs', ['runs']],
  ['gaxx runs show', ['runs', 'show', 'nosuchrun']],
  ['gaxx runs cancel', ['runs', 'cancel', 'nosuchrun']],
  ['gaxx runs wait', ['runs', 'wait', 'nosuchrun']],
  ['gaxx status', ['status']],
  ['gaxx run', ['run', '--agent', '127.0.0.1:1', '--', 'true']],
  ['gaxx run --tasks', ['run', '--agent', '127.0.0.1:1', '--tasks', '-', '--', 'echo'], 'a\nb\n'],
  ['gaxx run --fleet', ['run', '--fleet', 'nosuchfleet', '--', 'true']],
  ['gaxx run --resume', ['run', '--resume', 'nosuchrun']],
  ['gaxx cp to a fleet', ['cp', '/etc/hostname', 'nosuchfleet:/tmp/x']],
];

describe('a Redis that stops answering once a command found it ready', () => {
  it.concurrent.each(cases)('%s ends REDIS_UNAVAILABLE (12) at its request bound', { timeout: 60_000 }, async (_name, args, stdin) => {
    const cli = spawnGaxx(args, { home, env: hungEnv(), ...(stdin !== undefined ? { stdin: 'pipe' as const } : {}) });
    if (stdin !== undefined) cli.child.stdin?.end(stdin);
    const exit = await cli.done;
    expect(exit.stderr).toMatch(
      /no answer in time \(it keeps the connection but answers nothing: stopped, paused or cut off\?\); the bound is --redis-timeout-ms/,
    );
    expect(exit.code).toBe(exitCodeFor('REDIS_UNAVAILABLE'));
  });
});

/**
 * `gaxx run --agent <the agent> -- COMMAND` (a 1 s request bound, `goneMs` for its wait), with
 * Redis stopped (SIGSTOP) once the task runs: the run is in its wait for the result then. The
 * caller sends SIGCONT (`resumeRedis`).
 */
async function stoppedUnderWait(command: string[], goneMs: number): Promise<GaxxProcess> {
  const started = (): number => auditEvents(agent.auditLog).filter((e) => e.event === 'exec_started').length;
  const before = started();
  const cli = spawnGaxx(['run', '--agent', agent.address, '--', ...command], {
    home,
    env: { GAXX_REDIS_URL: redis.url, GAXX_REDIS_TIMEOUT_MS: '1000', GAXX_REDIS_GONE_MS: String(goneMs) },
  });
  expect(await eventually(() => started() > before, 30_000, 20)).toBe(true);
  process.kill((stopped = redis.pid() as number), 'SIGSTOP');
  return cli;
}

/** Lets the Redis stoppedUnderWait stopped answer again. */
function resumeRedis(): void {
  if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
  stopped = undefined;
}

describe('a Redis that stops answering under a run wait', () => {
  it('ends the run at --redis-gone-ms, REDIS_UNAVAILABLE (12), its end not waiting on Redis', { timeout: 60_000 }, async () => {
    const cli = await stoppedUnderWait(['sleep', '30'], 2000);
    try {
      const exit = await cli.done;
      expect(exit.stderr).toMatch(/redis unreachable for \d+ s while following run \S+; tasks without a result stay queued: gaxx run --resume \S+/);
      expect(exit.code).toBe(exitCodeFor('REDIS_UNAVAILABLE'));
    } finally {
      resumeRedis();
    }
  });
});

describe('a Redis that stops answering under a run wait, for less than --redis-gone-ms', () => {
  it('is said while it lasts, and the run goes on to its result, though each probe of it is cut at the request bound', { timeout: 90_000 }, async () => {
    // The request bound (1 s) is shorter than a stall takes to be noticed: the stall must outlast
    // the probes it cuts. The task outlasts the moment Redis is stopped (its result cannot come first).
    const cli = await stoppedUnderWait(['sh', '-c', 'sleep 3; echo ok'], 60_000);
    try {
      await cli.line('stderr', (l) => /^gaxx: Redis unreachable for \d+s$/.test(l), 40_000);
    } finally {
      resumeRedis();
    }
    const exit = await cli.done;
    expect(exit.stderr).toMatch(/^gaxx: Redis is back after \d+s$/m);
    expect(exit.stdout).toContain('ok');
    expect(exit.code).toBe(0);
  });
});

describe('a Redis that refuses the commands a command sends', () => {
  it.each([
    ['gaxx runs', ['runs']],
    ['gaxx run', ['run', '--agent', '127.0.0.1:1', '--', 'true']],
  ])('%s ends REDIS_UNAVAILABLE (12) with the reason Redis gave, not an internal error', { timeout: 60_000 }, async (_name, args) => {
    // A user that may read and nothing else.
    await withRedisAt(redis.url, (r) => r.call('ACL', 'SETUSER', 'reader', 'on', '>reader-secret-1', '~*', '&*', '+@read', '+@connection', '+info'));
    const url = `redis://reader:reader-secret-1@127.0.0.1:${redis.port as number}`;
    const r = await runGaxx(args, { home, env: { GAXX_REDIS_URL: url } });
    expect(r.stderr).toMatch(/NOPERM .*\[REDIS_UNAVAILABLE\]/);
    expect(r.stderr).not.toContain('internal error');
    expect(r.code).toBe(exitCodeFor('REDIS_UNAVAILABLE'));
  });
});

describe('--redis-insecure', () => {
  it('is honoured by the commands that read the queue, as by gaxx run', { timeout: 60_000 }, async () => {
    // 127.1 is loopback to the resolver but not a literal loopback address: refused as a non-loopback host unless opted in.
    const url = `redis://127.1:${redis.port as number}`;
    const refused = await runGaxx(['runs'], { home, env: { GAXX_REDIS_URL: url } });
    expect(refused.stderr).toContain('[REDIS_INSECURE]');
    expect(refused.code).toBe(exitCodeFor('REDIS_INSECURE'));
    for (const args of [['runs'], ['status', '--json'], ['runs', 'show', 'nosuchrun']]) {
      const r = await runGaxx(['--redis-insecure', ...args], { home, env: { GAXX_REDIS_URL: url } });
      expect(r.stderr).not.toContain('REDIS_INSECURE');
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(args[0] === 'runs' && args[1] === 'show' ? exitCodeFor('NOT_FOUND') : 0);
    }
  });
});
