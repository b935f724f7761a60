// The built CLI whose stdout or stderr cannot be written (/dev/full: every write fails with
// ENOSPC, as on a full disk; a stdout open only for reading: EBADF), against real agents and a
// real redis-server: the failure is said on stderr as FILE_ACCESS and the command exits 3, never
// 0; a run or an exec whose stdout fails winds its remote work down as when its reader goes away;
// the daemon whose stderr fails drops its logs and goes on.
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { createRedis, redisSettingsFromUrl, schedulerAlive, waitReady } from '../../scheduler/index.js';
import { jsonLines, spawnGaxx, type CliRun } from '../helpers/cli.js';
import { eventually } from '../helpers/poll.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';

let w: CliWorld;
let tmp: string;
let redis: Redis;
const FILE_ACCESS = exitCodeFor('FILE_ACCESS');

beforeAll(async () => {
  w = await cliWorld(2);
  tmp = w.scratch('gxo-');
  redis = createRedis(redisSettingsFromUrl(w.redis.url), 'producer') as Redis;
  await waitReady(redis);
});

afterAll(async () => {
  redis?.disconnect();
  await w?.close();
});

function taskList(name: string, n: number): string {
  const file = join(tmp, name);
  writeFileSync(file, Array.from({ length: n }, (_, i) => `r${i + 1}\n`).join(''));
  return file;
}

/** The command said, once, that stdout could not be written, with the errno, and exited 3. */
function expectStdoutFailure(r: CliRun, errno: string): void {
  expect(r.code, r.stderr).toBe(FILE_ACCESS);
  const said = r.stderr.split('\n').filter((l) => l.includes('[FILE_ACCESS]'));
  expect(said, r.stderr).toHaveLength(1);
  expect(said[0]).toContain('stdout');
  expect(said[0]).toContain(errno);
}

describe('a stdout that cannot be written', () => {
  it('gaxx run --json > /dev/full: said, the run cancelled (not all its input enqueued), exit 3', async () => {
    const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', taskList('many.txt', 2000), '--json', '--', 'echo', '{}'], { redirect: '>/dev/full' });
    expectStdoutFailure(r, 'ENOSPC');
    const runId = /^gaxx: run (\S+) cancelled/m.exec(r.stderr)?.[1];
    expect(runId, r.stderr).toBeDefined();
    const info = await redis.hgetall(`{gaxx}:run:${runId as string}:info`);
    expect(info.state).toBe('cancelled');
    // It stopped at its first line: what was queued was withdrawn, the rest never enqueued.
    expect(Number(info.enqueued)).toBeLessThan(2000);
  });

  it('gaxx run (one task per host, human output) > /dev/full: exit 3', async () => {
    expectStdoutFailure(await w.gaxx(['run', '--fleet', w.fleet, '--', 'echo', 'hi'], { redirect: '>/dev/full' }), 'ENOSPC');
  });

  it("gaxx exec streaming a task's stdout to /dev/full stops the task (it would sleep 600 s) and exits 3", async () => {
    const agent = w.agents[0]?.address as string;
    const r = await w.gaxx(['exec', '--agent', agent, '--', 'sh', '-c', 'echo hi; exec sleep 600'], { redirect: '>/dev/full' });
    expectStdoutFailure(r, 'ENOSPC');
  });

  it.each([
    ['exec --json', (agent: string) => ['exec', '--agent', agent, '--json', '--', 'echo', 'hi']],
    ['runs --json', () => ['runs', '--json']],
    ['ls', () => ['ls']],
    ['--help (the bundle front)', () => ['--help']],
    ['--version (the bundle front)', () => ['--version']],
  ])('gaxx %s > /dev/full: exit 3', async (_name, argv) => {
    expectStdoutFailure(await w.gaxx(argv(w.agents[0]?.address as string), { redirect: '>/dev/full' }), 'ENOSPC');
  });

  it('gaxx runs show ID --json > /dev/full: exit 3', async () => {
    const run = await w.gaxx(['run', '--fleet', w.fleet, '--json', '--', 'true']);
    expect(run.code, run.stderr).toBe(0);
    const runId = jsonLines(run.stdout)[0]?.runId as string;
    expectStdoutFailure(await w.gaxx(['runs', 'show', runId, '--json'], { redirect: '>/dev/full' }), 'ENOSPC');
  });

  it('a stdout open only for reading (1</dev/null): EBADF, exit 3', async () => {
    expectStdoutFailure(await w.gaxx(['run', '--fleet', w.fleet, '--', 'echo', 'hi'], { redirect: '1</dev/null' }), 'EBADF');
  });

  it('a stdout that takes everything (/dev/null) is no failure', async () => {
    const r = await w.gaxx(['run', '--fleet', w.fleet, '--json', '--', 'echo', 'hi'], { redirect: '>/dev/null' });
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('a stderr that cannot be written', () => {
  it("gaxx run 2>/dev/full: the run's results still reach stdout, and the exit code says stderr failed (3)", async () => {
    const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', taskList('few.txt', 4), '--', 'sh', '-c', 'echo out-$1; echo err-$1 >&2', '_', '{}'], {
      redirect: '2>/dev/full',
    });
    expect(r.code).toBe(FILE_ACCESS);
    for (let i = 1; i <= 4; i++) expect(r.stdout).toContain(`out-r${i}`);
  });

  it('gaxx scheduler 2>/dev/full: the daemon serves runs, hears SIGTERM and exits 3, not wedged retrying its log lines', async () => {
    const full = openSync('/dev/full', 'w');
    try {
      const daemon = spawnGaxx(['scheduler', '--metrics-listen', '', '--ui-listen', ''], { home: w.home, env: w.env, fds: [[2, full]] });
      // Up once its heartbeat is in Redis: a run then leaves its tasks to it.
      expect(await eventually(() => schedulerAlive(redis), 60_000)).toBe(true);
      const r = await w.gaxx(['run', '--fleet', w.fleet, '--', 'echo', 'hi']);
      expect(r.code, r.stderr).toBe(0);
      // Before: pino's destination retried a failed log line every 100 ms, blocking the event
      // loop, so SIGTERM (and Ctrl-C) were never acted on and the daemon had to be killed.
      daemon.kill('SIGTERM');
      expect((await daemon.done).code).toBe(FILE_ACCESS);
    } finally {
      closeSync(full);
    }
  }, 120_000);

  it('gaxx --help 2>/dev/full writes its answer to stdout and exits 0 (it wrote nothing to stderr)', async () => {
    const r = await w.gaxx(['--help'], { redirect: '2>/dev/full' });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^gaxx /);
  });
});
