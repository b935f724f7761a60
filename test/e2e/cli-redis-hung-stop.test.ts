// A Ctrl-C while a command waits for a Redis that accepted its connection and never answers
// (redis-server stopped by SIGSTOP: a paused machine, a hung server). Every command that winds
// down on a stop (run, a task list, --resume, cp to a fleet, ui, the scheduler daemon, spawn)
// ends at once with CANCELLED (130), saying what it was waiting for, instead of waiting out
// the 5 s readiness bound and then failing with REDIS_UNAVAILABLE (12). Real redis-server and
// the built CLI.
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { spawnGaxx, stopAllGaxx } from '../helpers/cli.js';
import { initHome } from '../helpers/cli-world.js';
import { eventually } from '../helpers/poll.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

let home: string;
let redis: TestRedis;
let stopped: number | undefined;

beforeAll(async () => {
  home = await initHome('gxhs-');
  redis = await startRedis({ tcp: true });
  stopped = redis.pid() as number;
  process.kill(stopped, 'SIGSTOP');
});

afterAll(async () => {
  await stopAllGaxx();
  if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
  await redis?.destroy();
  if (home) rmSync(home, { recursive: true, force: true });
});

/** Whether a connection to loopback `port` is established (the kernel accepts it for a stopped server too). */
function connectedTo(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .some((l) => {
      const f = l.trim().split(/\s+/);
      return f[2] === `0100007F:${hex}` && f[3] === '01';
    });
}

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
