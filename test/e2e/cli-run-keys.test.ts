// What a run leaves in Redis: every key of a finished run expires, and its queue is gone. The
// built CLI against a real redis-server and real agents, without a daemon and with one.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { createRedis, redisSettingsFromUrl, waitReady } from '../../scheduler/index.js';
import type { GaxxProcess } from '../helpers/cli.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';
import { taskGate, type TaskGate } from '../helpers/gate.js';

let w: CliWorld;
let tmp: string;
let redis: Redis;

beforeAll(async () => {
  w = await cliWorld(2);
  tmp = w.scratch('gxk-');
  redis = createRedis(redisSettingsFromUrl(w.redis.url), 'producer') as Redis;
  await waitReady(redis);
});

afterAll(async () => {
  redis?.disconnect();
  await w?.close();
});

/** The run id `gaxx run` names on stderr. */
function runIdOf(stderr: string): string {
  const id = /^gaxx: run (\S+)$/m.exec(stderr)?.[1];
  if (!id) throw new Error(`no run id in: ${stderr}`);
  return id;
}

/** Every key that names the run (`{gaxx}:run:<id>:*` and its queue's `{gaxx}:run.<id>:*`), with its PTTL. */
async function keysOf(runId: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `*${runId}*`, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) out.set(k, await redis.pttl(k));
  } while (cursor !== '0');
  return out;
}

/** The run left nothing without a TTL, no queue, and no entry in the registry of served runs. */
async function expectCleanedUp(runId: string): Promise<void> {
  // A daemon serving the run may complete its last job a moment after the run's owner saw its
  // result: its owner waits for that before it removes the queue, so this holds once it exits.
  const keys = await keysOf(runId);
  expect(keys.size, 'the run keeps its results and record').toBeGreaterThan(0);
  const forever = [...keys].filter(([, ttl]) => ttl === -1).map(([k]) => k);
  expect(forever, 'keys of the run without a TTL').toEqual([]);
  expect([...keys.keys()].filter((k) => k.startsWith(`{gaxx}:run.${runId}:`))).toEqual([]);
  expect(await redis.zscore('{gaxx}:runs', runId)).toBeNull();
}

function taskList(name: string, n: number): string {
  const file = join(tmp, name);
  writeFileSync(file, Array.from({ length: n }, (_, i) => `r${i + 1}\n`).join(''));
  return file;
}

/** A task list of 6 records waiting at `gate`, at `concurrency`, whose wait ends after 2 s (DEADLINE_EXCEEDED; its tasks stay). */
async function timedOutList(file: string, concurrency: number, gate: TaskGate): Promise<{ runId: string; stderr: string }> {
  const r = await w.gaxx([
    'run',
    '--fleet',
    w.fleet,
    '--tasks',
    taskList(file, 6),
    '--concurrency',
    String(concurrency),
    '--wait-timeout',
    '2s',
    '--',
    'sh',
    '-c',
    gate.wait,
  ]);
  expect(r.code, r.stderr).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
  return { runId: runIdOf(r.stderr), stderr: r.stderr };
}

/**
 * Cancels a run with `signal` (Ctrl-C; SIGTERM from `timeout` or a service manager; SIGHUP from
 * a closed terminal) once its tasks run (they wait at a gate never opened).
 */
async function cancelled(args: string[], signal: NodeJS.Signals = 'SIGINT'): Promise<string> {
  const run = w.spawnGaxx(['run', '--fleet', w.fleet, ...args]);
  const runId = runIdOf(await run.line('stderr', (l) => l.startsWith('gaxx: run ')));
  // Running on both agents: the run's queue has active jobs.
  for (let i = 0; i < 200 && (await redis.llen(`{gaxx}:run.${runId}:active`)) < 2; i++) await sleep(50);
  expect(await redis.llen(`{gaxx}:run.${runId}:active`)).toBeGreaterThanOrEqual(2);
  run.kill(signal);
  const end = await run.done;
  expect(end.code, end.stderr).toBe(exitCodeFor('CANCELLED'));
  if (signal !== 'SIGINT') expect(end.stderr).toContain(`gaxx: ${signal}: cancelling`);
  expect(end.stderr).toMatch(/cancelled/);
  expect(await redis.hget(`{gaxx}:run:${runId}:info`, 'state')).toBe('cancelled');
  return runId;
}

function suite(withDaemon: boolean): void {
  let daemon: GaxxProcess | undefined;

  beforeAll(async () => {
    if (!withDaemon) return;
    daemon = await w.startDaemon(['--ui-listen', '127.0.0.1:0', '--reap-interval', '0']);
  });

  afterAll(async () => {
    daemon?.kill('SIGTERM');
    await daemon?.done;
  });

  it('one task per host', async () => {
    const r = await w.gaxx(['run', '--fleet', w.fleet, '--', 'true']);
    expect(r.code, r.stderr).toBe(0);
    await expectCleanedUp(runIdOf(r.stderr));
  });

  it('a task list', async () => {
    const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', taskList('list.txt', 60), '--concurrency', '8', '--', 'echo', '{}']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('60 tasks: 60 succeeded');
    await expectCleanedUp(runIdOf(r.stderr));
  });

  it.each(['SIGTERM', 'SIGHUP'] as const)('%s cancels a run as Ctrl-C does: its tasks stopped, nothing left for a later scheduler', async (signal) => {
    const gate = taskGate(60);
    try {
      await expectCleanedUp(await cancelled(['--tasks', taskList('term.txt', 12), '--concurrency', '6', '--', 'sh', '-c', gate.wait], signal));
    } finally {
      gate.open();
      gate.remove();
    }
  });

  it('a closed stdout (`gaxx run ... | head -1`) cancels the run: exit 141, its queued tasks withdrawn, nothing left', async () => {
    const run = w.spawnGaxx(['run', '--fleet', w.fleet, '--tasks', taskList('many.txt', 2000), '--', 'echo', '{}']);
    const runId = runIdOf(await run.line('stderr', (l) => l.startsWith('gaxx: run ')));
    await run.line('stdout', (l) => /r\d+$/.test(l));
    // The reader goes away, as `head -1` does after its line: the next write fails (EPIPE).
    run.child.stdout?.destroy();
    const end = await run.done;
    expect(end.code, end.stderr).toBe(141);
    expect(end.stderr).toContain('gaxx: stdout was closed (its reader went away): cancelling');
    const info = await redis.hgetall(`{gaxx}:run:${runId}:info`);
    expect(info.state).toBe('cancelled');
    // Not all 2000 ran: the rest were withdrawn, not left for a scheduler started later.
    expect(Number((JSON.parse(info.counts ?? '{}') as { cancelled?: number }).cancelled ?? 0)).toBeGreaterThan(0);
    await expectCleanedUp(runId);
  });

  it('a cancelled task list and a cancelled run of one task per host', async () => {
    const gate = taskGate(60);
    try {
      const list = await cancelled(['--tasks', taskList('slow.txt', 12), '--concurrency', '6', '--', 'sh', '-c', gate.wait]);
      await expectCleanedUp(list);
      const each = await cancelled(['--', 'sh', '-c', gate.wait]);
      await expectCleanedUp(each);
    } finally {
      gate.open();
      gate.remove();
    }
  });
}

describe('a run without a daemon leaves no key without a TTL, and no queue', () => suite(false));
describe('a run served by a daemon leaves no key without a TTL, and no queue', () => suite(true));

describe('a task list that fills one window exactly', () => {
  it('is known whole when its wait ends early: no record is said never enqueued, and --resume sees it done', async () => {
    const gate = taskGate(60);
    try {
      const { runId, stderr } = await timedOutList('window.txt', 6, gate);
      expect(stderr).not.toMatch(/never enqueued/);
      gate.open();
      const resumed = await w.gaxx(['run', '--resume', runId]);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stderr).not.toMatch(/interrupted|never enqueued/);
    } finally {
      gate.open();
      gate.remove();
    }
  });
});

describe('a run whose wait ended early', () => {
  it('keeps its queued tasks for --resume, which sees the run through and then removes its queue', async () => {
    const gate = taskGate(60);
    try {
      const { runId } = await timedOutList('late.txt', 10, gate);
      // Its jobs stay: nothing of the run's queue was removed.
      expect(await redis.hlen(`{gaxx}:run:${runId}:tasks`)).toBe(6);
      const jobs = [...(await keysOf(runId)).keys()].filter((k) => k.startsWith(`{gaxx}:run.${runId}:${runId}-`) && !k.endsWith(':lock'));
      expect(jobs).toHaveLength(6);
      expect(await redis.zscore('{gaxx}:runs', runId)).not.toBeNull();
      gate.open();
      const resumed = await w.gaxx(['run', '--resume', runId]);
      expect(resumed.code, resumed.stderr).toBe(0);
      await expectCleanedUp(runId);
    } finally {
      gate.open();
      gate.remove();
    }
  });
});
