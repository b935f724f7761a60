// What a Redis writer without any gaxx key puts in a run's stream, done hash or record is
// external input to the built CLI: a forged result writes nothing outside `--results DIR` and does
// not end the run; a malformed record or result fails no command; escape sequences read from
// Redis never reach the terminal raw.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, publishResult, redisSettingsFromUrl, taskResult, waitReady, type TaskResult } from '../../scheduler/index.js';
import { runDoneKey, runEventsKey } from '../../scheduler/queue/results.js';
import { createRunRecord, runInfoKey, RUN_INDEX_KEY } from '../../scheduler/queue/run-index.js';
import { runTasksKey } from '../../scheduler/queue/runs.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';
import { taskGate } from '../helpers/gate.js';

let w: CliWorld;
let r: Redis;

beforeAll(async () => {
  w = await cliWorld(1);
  r = createRedis(redisSettingsFromUrl(w.redis.url), 'producer') as Redis;
  await waitReady(r);
});

afterAll(async () => {
  r?.disconnect();
  await w?.close();
});

const result = (runId: string, taskId: string, over: Partial<TaskResult> = {}): TaskResult =>
  taskResult({ runId, taskId, host: '127.0.0.1:1', outcome: 'succeeded', reason: '' }, { exitCode: 0, attempts: 1, ...over });

/** A result entry on the run's stream, as a Redis writer adds one. */
async function forge(runId: string, task: string, json: string): Promise<void> {
  await r.xadd(runEventsKey(runId), '*', 't', 'res', 'task', task, 'r', json, 'lb', '-1', 'lo', '0', 'ob', '0');
}

/** A finished run's record, written directly. */
async function plantRecord(runId: string, over: Record<string, string> = {}): Promise<void> {
  const now = String(Date.now());
  await r.hset(runInfoKey(runId), {
    runId,
    argv: '["x"]',
    fleet: w.fleet,
    agents: '1',
    mode: 'tasks',
    startedAt: now,
    seen: now,
    state: 'done',
    enqueued: '1',
    total: '1',
    counts: '{}',
    ...over,
  });
  await r.zadd(RUN_INDEX_KEY, now, runId);
}

describe('forged Redis data', () => {
  it('a forged result with a traversal task id writes nothing outside --results DIR, and the real result still arrives', async () => {
    const dir = join(w.scratch('gxr-'), 'results');
    const outside = w.scratch('gxo-');
    const gate = taskGate();
    const run = w.spawnGaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--results', dir, '--', 'sh', '-c', `${gate.wait}; echo "got $1"`, '_', '{}']);
    run.child.stdin?.end('one\n');
    const runId = (/^gaxx: run (\S+)$/.exec(await run.line('stderr', (l) => /^gaxx: run \S+$/.test(l))) as RegExpExecArray)[1] as string;
    // The task waits at its gate: these entries come before its result.
    const escape = `/../../../../../../../..${outside}/escaped`;
    await r.xadd(runEventsKey(runId), '*', 't', 'out', 'task', '1', 's', '1', 'd', 'attacker bytes');
    await forge(runId, '1', JSON.stringify({ ...result(runId, '1'), taskId: escape, host: '..' }));
    await forge(runId, escape, JSON.stringify({ ...result(runId, '1'), taskId: escape }));
    // Valid, but of a task the run never enqueued: it must not count toward the run's end.
    await forge(runId, '7', JSON.stringify(result(runId, '7')));
    gate.open();
    const ended = await run.done;
    gate.remove();
    expect(ended.code, ended.stderr).toBe(0);
    expect(existsSync(join(outside, 'escaped'))).toBe(false);
    expect(readdirSync(outside)).toEqual([]);
    expect(readdirSync(join(dir, '1'))).toEqual(['one']);
    expect(readFileSync(join(dir, '1', 'one', 'stdout'), 'utf8')).toContain('got one');
    expect(JSON.parse(readFileSync(join(dir, '1', 'one', 'result.json'), 'utf8'))).toMatchObject({ taskId: '1', outcome: 'succeeded', input: 'one' });
    expect(ended.stderr).toContain(`gaxx: warning: run ${runId}: ignored 3 results`);
    expect(ended.stderr).toMatch(/1 task: 1 succeeded/);
  });

  it('`gaxx runs` leaves out a record that is not valid (warning) and lists the others, exit 0', async () => {
    await createRunRecord(r, { runId: 'fgood1', argv: ['true'], fleet: w.fleet, agents: 1, mode: 'tasks', startedAt: Date.now() - 1000, total: 1 });
    await plantRecord('fbad1', { argv: '"notanarray"' });
    await plantRecord('fbad2', { fleet: 'a3\x1b[8m' });
    const list = await w.gaxx(['runs']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain('fgood1');
    expect(list.stdout).not.toContain('fbad1');
    expect(list.stderr).toContain('gaxx: warning: run fbad1: its record is not valid; not listed (argv: ');
    expect(list.stderr).toContain('gaxx: warning: run fbad2:');
    expect(list.stdout + list.stderr).not.toContain('\x1b');
    const json = await w.gaxx(['runs', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect((JSON.parse(json.stdout) as Array<{ runId: string }>).map((x) => x.runId)).toContain('fgood1');
  });

  it('`runs show` of a run with a null result shows the others; `runs wait` skips malformed results and ends with the real ones', async () => {
    await plantRecord('fnull1', { enqueued: '2', total: '2' });
    await r.hset(runTasksKey('fnull1'), '1', '', '2', '');
    await forge('fnull1', '1', 'null');
    await forge('fnull1', '1', '{not json');
    await r.hset(runDoneKey('fnull1'), 'x', 'null');
    await publishResult(r, result('fnull1', '1'), [{ stream: 1, data: Buffer.from('real one\n') }]);
    await publishResult(r, result('fnull1', '2', { outcome: 'failed', exitCode: 3 }), []);
    const show = await w.gaxx(['runs', 'show', 'fnull1']);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^run fnull1: done, 2\/2 tasks/);
    expect(show.stderr).toContain('gaxx: warning: run fnull1: ignored 1 result');
    const wait = await w.gaxx(['runs', 'wait', 'fnull1', '--json', '--wait-timeout', '60s']);
    expect(wait.code, wait.stderr).toBe(1);
    const lines = wait.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.type === 'task').map((l) => l.taskId)).toEqual(['1', '2']);
    expect(lines.at(-1)).toMatchObject({ type: 'summary', total: 2, succeeded: 1, failed: 1 });
    expect(wait.stderr).toContain('gaxx: warning: run fnull1: ignored 2 results');
  });

  it('escape sequences in a host, task id, command or error read from Redis do not reach `runs show` or `runs wait` raw', async () => {
    await plantRecord('fesc1', { argv: JSON.stringify(['\x1b]0;PWNED\x07\x1b[31mrm', '-rf']) });
    await r.hset(runTasksKey('fesc1'), '1', '');
    const evil = result('fesc1', '1', {
      outcome: 'failed',
      exitCode: 1,
      host: 'h\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07',
      reason: 'x\x9b2J',
      error: 'boom\x1b[?1049h',
    });
    await publishResult(r, evil, [{ stream: 1, data: Buffer.from('task output\n') }]);
    // A task id with escapes is no task id: skipped.
    await r.hset(runDoneKey('fesc1'), '1\x1b[2K\x1b[1A', JSON.stringify({ ...evil, taskId: '1\x1b[2K\x1b[1A' }));
    const show = await w.gaxx(['runs', 'show', 'fesc1']);
    expect(show.code, show.stderr).toBe(0);
    // eslint-disable-next-line no-control-regex
    const raw = /[\x00-\x09\x0b-\x1f\x7f\u0080-\u009f]/;
    expect(show.stdout).not.toMatch(raw);
    expect(show.stderr).not.toMatch(raw);
    expect(show.stdout).toContain('command: \\x1b]0;PWNED\\x07\\x1b[31mrm -rf');
    expect(show.stdout).toContain('h\\x1b]8;;http://evil.example/\\x07click');
    const wait = await w.gaxx(['runs', 'wait', 'fesc1', '--wait-timeout', '60s']);
    expect(wait.code, wait.stderr).toBe(1);
    expect(wait.stdout).toContain('task output');
    expect(wait.stdout).not.toMatch(raw);
    expect(wait.stdout).toContain('boom\\x1b[?1049h');
  });
});
