// `gaxx runs`, `runs wait` on a run whose CLI was killed, `runs cancel`: the built CLI, a daemon, real agents.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, readFileIfExists } from '../../cli/config.js';
import { Output } from '../../cli/output.js';
import { executeRun } from '../../cli/run/execute.js';
import { planRun } from '../../cli/run/plan.js';
import { exitCodeFor, REQUEST_LIMITS } from '../../proto/index.js';
import { redisTarget } from '../../scheduler/light/index.js';
import { getRunRecord } from '../../scheduler/queue/run-index.js';
import { createRedis, listRunRecords, redisSettingsFromUrl, waitReady, type RunRecord } from '../../scheduler/index.js';
import { jsonLines, type GaxxProcess } from '../helpers/cli.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';
import { taskGate } from '../helpers/gate.js';
import { eventually } from '../helpers/poll.js';

let w: CliWorld;
let tmp: string;
let daemon: GaxxProcess;

beforeAll(async () => {
  w = await cliWorld(2);
  tmp = w.scratch('gxt-');
  daemon = await w.startDaemon();
});

afterAll(async () => {
  daemon?.kill('SIGTERM');
  await daemon?.done;
  await w?.close();
});

/** Polls the run index until `pred` holds for the newest run. */
async function newestRun(pred: (r: RunRecord) => boolean): Promise<RunRecord> {
  const redis = createRedis(redisSettingsFromUrl(w.redis.url), 'producer');
  try {
    await waitReady(redis);
    for (let i = 0; i < 1200; i++) {
      const [r] = await listRunRecords(redis, 1);
      if (r && pred(r)) return r;
      await sleep(50);
    }
    throw new Error('run did not reach the expected state');
  } finally {
    redis.disconnect();
  }
}

async function record(runId: string): Promise<RunRecord | undefined> {
  const redis = createRedis(redisSettingsFromUrl(w.redis.url), 'producer');
  try {
    await waitReady(redis);
    return await getRunRecord(redis, runId);
  } finally {
    redis.disconnect();
  }
}

/** Makes a run's `seen` a minute old, as though its tasks had run that long unfollowed; returns it. */
async function ageSeen(runId: string): Promise<number> {
  const redis = createRedis(redisSettingsFromUrl(w.redis.url), 'producer');
  try {
    await waitReady(redis);
    const old = Date.now() - 60_000;
    await redis.hset(`{gaxx}:run:${runId}:info`, 'seen', String(old));
    return old;
  } finally {
    redis.disconnect();
  }
}

/** The state `gaxx runs --json` shows for a run. */
async function shown(runId: string): Promise<unknown> {
  const listed = JSON.parse((await w.gaxx(['runs', '--json'])).stdout) as Array<{ runId: string; state: string }>;
  return listed.find((x) => x.runId === runId)?.state;
}

/** Whether something following the run refreshed its `seen` past `old` (within a few of its beats). */
async function followed(runId: string, old: number): Promise<boolean> {
  return eventually(async () => ((await record(runId))?.seen ?? 0) > old, 30_000);
}

describe('gaxx runs', () => {
  it('`runs wait` on a run whose CLI was killed prints every result; `runs` and `runs show` list it', async () => {
    const file = join(tmp, 'six.txt');
    writeFileSync(file, 'one\ntwo\nthree\nfour\nfive\nsix\n');
    // The tasks end only once their CLI is gone.
    const gate = taskGate();
    const script = `${gate.wait}; echo "got $1"`;
    const run = w.spawnGaxx(['run', '--fleet', w.fleet, '--tasks', file, '--', 'sh', '-c', script, '_', '{}']);
    const rec = await newestRun((r) => r.total === 6 && r.argv[0] === 'sh');
    run.kill('SIGKILL');
    await run.done;
    gate.open();
    const r = await w.gaxx(['runs', 'wait', rec.runId, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines[0]).toMatchObject({ type: 'run', runId: rec.runId, argv: ['sh', '-c', script, '_', '{}'] });
    gate.remove();
    expect(lines.at(-1)).toMatchObject({ type: 'summary', total: 6, succeeded: 6 });
    const tasks = lines.filter((l) => l.type === 'task');
    expect(tasks.map((t) => t.stdout).sort()).toEqual(['five', 'four', 'one', 'six', 'three', 'two'].map((x) => `got ${x}\n`));
    const list = await w.gaxx(['runs', '--json']);
    expect(list.code, list.stderr).toBe(0);
    // Times as every command's JSON gives them: ISO strings, the run index's own ms behind them.
    const stored = (await record(rec.runId)) as RunRecord;
    // The run's own duration, from its start to its end: not how long this wait took.
    expect(lines.at(-1)?.durationMs).toBe((stored.finishedAt as number) - stored.startedAt);
    const times = { startedAt: new Date(stored.startedAt).toISOString(), finishedAt: new Date(stored.finishedAt as number).toISOString() };
    expect((JSON.parse(list.stdout) as Array<Record<string, unknown>>).find((x) => x.runId === rec.runId)).toMatchObject({
      state: 'done',
      counts: { succeeded: 6 },
      fleet: w.fleet,
      ...times,
    });
    const show = await w.gaxx(['runs', 'show', rec.runId, '--json']);
    const shown = JSON.parse(show.stdout) as { results: unknown[] } & Record<string, unknown>;
    expect(shown.results).toHaveLength(6);
    expect(shown).toMatchObject({ runId: rec.runId, state: 'done', ...times });
    expect((await w.gaxx(['runs', 'show', 'rnope'])).code).toBe(exitCodeFor('NOT_FOUND'));
    // The daemon that ran the tasks publishes its breakers with its heartbeat: `status` shows them.
    let rows: Array<{ breaker: string }> = [];
    for (let i = 0; i < 40 && !(rows.length === 2 && rows.every((x) => x.breaker === 'closed')); i++) {
      rows = JSON.parse((await w.gaxx(['status', w.fleet, '--json'])).stdout) as Array<{ breaker: string }>;
    }
    expect(rows.map((x) => x.breaker)).toEqual(['closed', 'closed']);
  });

  it('`runs cancel` from another process ends a running run: its gaxx run exits 130, tasks cancelled', async () => {
    const run = w.spawnGaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--concurrency', '2', '--', 'sleep', '{}']);
    run.child.stdin?.end('30\n30\n30\n30\n');
    const rec = await newestRun((r) => r.argv[0] === 'sleep' && r.enqueued >= 2);
    const c = await w.gaxx(['runs', 'cancel', rec.runId]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toContain('cancel requested');
    const ended = await run.done;
    expect(ended.code, ended.stderr).toBe(exitCodeFor('CANCELLED'));
    expect(ended.stderr).toMatch(/cancelled/);
    expect((await record(rec.runId))?.state).toBe('cancelled');
    // A second cancel says the run was cancelled before, not that it was asked now.
    const again = await w.gaxx(['runs', 'cancel', rec.runId, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ runId: rec.runId, alreadyCancelled: true, withdrawn: 0 });
    expect((await w.gaxx(['runs', 'cancel', rec.runId])).stdout).toContain('was already cancelled; 0 queued tasks withdrawn now');
  });

  it('a running run shows its results so far as done (table and --json), not 0 until it ends', async () => {
    const gate = taskGate();
    const run = w.spawnGaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--', 'sh', '-c', `if [ "$1" = w ]; then ${gate.wait}; fi`, '_', '{}']);
    run.child.stdin?.end('a\nb\nc\nw\n');
    try {
      const rec = await newestRun((r) => r.argv[0] === 'sh' && r.total === 4);
      type Listed = RunRecord & { done?: number };
      let mine: Listed | undefined;
      const listed = async (): Promise<boolean> => {
        mine = (JSON.parse((await w.gaxx(['runs', '--json'])).stdout) as Listed[]).find((x) => x.runId === rec.runId);
        return mine?.done === 3;
      };
      await eventually(listed, 60_000);
      expect(mine).toMatchObject({ state: 'running', done: 3, total: 4 });
      const table = (await w.gaxx(['runs'])).stdout.split('\n').find((l) => l.startsWith(rec.runId));
      expect(table).toMatch(/\s3\/4\s/);
    } finally {
      gate.open();
    }
    const ended = await run.done;
    gate.remove();
    expect(ended.code, ended.stderr).toBe(0);
  });

  it.each([
    ['one task per host', false],
    ['a task list, its input all enqueued', true],
  ])('a run someone waits for is running, not submitter-gone, however long its tasks take: %s, its gaxx run, then a runs wait of it', async (_what, list) => {
    const gate = taskGate();
    const run = list
      ? w.spawnGaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--', 'sh', '-c', gate.wait, '_', '{}'])
      : w.spawnGaxx(['run', '--fleet', w.fleet, '--', 'sh', '-c', gate.wait]);
    run.child.stdin?.end(list ? 'a\nb\n' : '');
    try {
      const rec = await newestRun((r) => r.argv[2] === gate.wait && r.total === 2);
      // Its gaxx run's beat refreshes it, though its tasks have not ended.
      expect(await followed(rec.runId, await ageSeen(rec.runId))).toBe(true);
      expect(await shown(rec.runId)).toBe('running');
      run.kill('SIGKILL');
      await run.done;
      await ageSeen(rec.runId);
      expect(await shown(rec.runId)).toBe('submitter-gone');
      // A `runs wait` of it follows it to its end: running again while it waits.
      const waiting = w.spawnGaxx(['runs', 'wait', rec.runId, '--json']);
      expect(await followed(rec.runId, await ageSeen(rec.runId))).toBe(true);
      expect(await shown(rec.runId)).toBe('running');
      gate.open();
      const ended = await waiting.done;
      expect(ended.code, ended.stderr).toBe(0);
      expect(jsonLines(ended.stdout).at(-1)).toMatchObject({ type: 'summary', total: 2, succeeded: 2 });
      expect(await shown(rec.runId)).toBe('done');
    } finally {
      gate.open();
      run.kill('SIGKILL');
      await run.done;
      gate.remove();
    }
  });

  it('a wait that times out writes no --results folder for a task without a result (only results are folders), counts and names them, and says how to get them', async () => {
    const gate = taskGate();
    try {
      const list = join(tmp, 'waited.txt');
      writeFileSync(list, 'one\ntwo\n');
      const dir = join(tmp, 'waited-results');
      const r = await w.gaxx(['run', '--json', '--fleet', w.fleet, '--tasks', list, '--wait-timeout', '1s', '--results', dir, '--', 'sh', '-c', gate.wait]);
      expect(r.code, r.stderr).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
      const runId = jsonLines(r.stdout)[0]?.runId as string;
      // Before: DIR/1/one and DIR/1/two, each a whole folder saying `unknown`, though both tasks ran on to succeed.
      expect(readdirSync(join(dir, '1'))).toEqual([]);
      expect(jsonLines(r.stdout).at(-1)).toMatchObject({ type: 'summary', state: 'running', unknown: 2, resultsNotWritten: 2 });
      expect(r.stderr).toMatch(/--results: 2 tasks' result folders were not written \(tasks [12], [12]\).*gaxx runs wait/);
      // One task per host, the same.
      const each = join(tmp, 'waited-each');
      const e = await w.gaxx(['run', '--fleet', w.fleet, '--wait-timeout', '1s', '--results', each, '--', 'sh', '-c', gate.wait]);
      expect(e.code, e.stderr).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
      expect(readdirSync(join(each, '1'))).toEqual([]);
      expect(e.stderr).toMatch(/--results: 2 tasks' result folders were not written/);
      gate.open();
      const waited = await w.gaxx(['runs', 'wait', runId, '--json']);
      expect(waited.code, waited.stderr).toBe(0);
      const eachId = /gaxx: run (\S+)/.exec(e.stderr)?.[1] as string;
      expect((await w.gaxx(['runs', 'wait', eachId])).code).toBe(0);
    } finally {
      gate.open();
      gate.remove();
    }
  });

  it('a run whose wait timed out stays running in the index (its tasks are still queued or running); --resume sees it through to done, each line once', async () => {
    const gate = taskGate();
    const r = await w.gaxx(['run', '--fleet', w.fleet, '--wait-timeout', '1s', '--', 'sh', '-c', `echo start; ${gate.wait}; echo end`]);
    expect(r.code, r.stderr).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
    const runId = /gaxx: run (\S+)/.exec(r.stderr)?.[1] as string;
    // Not done, and the unknowns this gaxx run reported for the tasks it stopped waiting for are no results.
    expect(await record(runId)).toMatchObject({ state: 'running', counts: {} });
    const listed = JSON.parse((await w.gaxx(['runs', '--json'])).stdout) as RunRecord[];
    expect(listed.find((x) => x.runId === runId)).toMatchObject({ state: 'running', counts: {} });
    // `runs wait` that times out too ends as `gaxx run` does: JSON Lines to the summary, every
    // task without a result unknown, exit 13, and the run left running.
    const waited = await w.gaxx(['runs', 'wait', runId, '--wait-timeout', '1s', '--json']);
    expect(waited.code, waited.stderr).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
    const lines = jsonLines(waited.stdout);
    expect(lines[0]).toMatchObject({ type: 'run', runId });
    expect(lines.filter((l) => l.type === 'task').map((l) => [l.outcome, l.reason])).toEqual([
      ['unknown', 'DEADLINE_EXCEEDED'],
      ['unknown', 'DEADLINE_EXCEEDED'],
    ]);
    expect(lines.at(-1)).toMatchObject({ type: 'summary', state: 'running', total: 2, unknown: 2 });
    expect(waited.stderr).toMatch(/tasks without a result stay queued/);
    expect(await record(runId)).toMatchObject({ state: 'running', counts: {} });
    gate.open();
    const resumed = await w.gaxx(['run', '--resume', runId]);
    gate.remove();
    expect(resumed.code, resumed.stderr).toBe(0);
    // Printed as its own `gaxx run` prints a run of one task per host: a result line per host,
    // and each task's output once, though its first line was shown before and its end replayed.
    const out = resumed.stdout.split('\n');
    expect(out.filter((l) => /^== \S+: succeeded \(exit 0, \d+ ms\)$/.test(l))).toHaveLength(2);
    expect(out.filter((l) => /: start$/.test(l))).toHaveLength(2);
    expect(out.filter((l) => /: end$/.test(l))).toHaveLength(2);
    expect(resumed.stdout).not.toMatch(/output in full/);
    expect(await record(runId)).toMatchObject({ state: 'done', counts: { succeeded: 2 } });
    // A later reader of the whole run sees the same: each task's output exactly.
    const again = await w.gaxx(['runs', 'wait', runId, '--json']);
    expect(again.code, again.stderr).toBe(0);
    const tasks = jsonLines(again.stdout).filter((l) => l.type === 'task');
    expect(tasks.map((t) => t.stdout)).toEqual(['start\nend\n', 'start\nend\n']);
  });

  it('a run the queue refuses at enqueue, after its record was made, is failed in the index, not running for good', async () => {
    // The CLI checks what the queue would refuse before this; a plan built past those checks
    // (a timeout over the agents' limit) stands for any refusal the CLI does not foresee.
    const config = loadConfig({ argv: [], env: { GAXX_HOME: w.home, GAXX_REDIS_URL: w.redis.url }, readFile: readFileIfExists });
    const plan = planRun({ fleet: w.fleet }, ['true'], config.agent.port);
    plan.common.timeoutMs = REQUEST_LIMITS.timeoutMs + 1;
    const stdout = new PassThrough();
    let printed = '';
    stdout.on('data', (d: Buffer) => (printed += d.toString()));
    const io = { stdout, stderr: new PassThrough().resume(), stderrLive: false };
    const ctx = { config, out: new Output(io, true), io, signal: new AbortController().signal, redis: redisTarget(config.redis.url, config.paths.stateDir) };
    await expect(executeRun(plan, ctx)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const runId = (JSON.parse(printed.split('\n')[0] as string) as { runId: string }).runId;
    expect(await record(runId)).toMatchObject({ state: 'failed' });
  });

  it('`runs wait` and `run --resume` of a fleet task list give each result as its gaxx run did: its record (input), its host by name', async () => {
    const file = join(tmp, 'named.txt');
    writeFileSync(file, 'one\ntwo\nthree\n');
    const tasksOf = (stdout: string): Array<Record<string, unknown>> =>
      jsonLines(stdout)
        .filter((l) => l.type === 'task')
        .sort((a, b) => Number(a.taskId) - Number(b.taskId));
    const run = await w.gaxx(['run', '--json', '--fleet', w.fleet, '--tasks', file, '--', 'echo', '{}']);
    expect(run.code, run.stderr).toBe(0);
    const runId = jsonLines(run.stdout)[0]?.runId as string;
    const own = tasksOf(run.stdout);
    expect(own.map((t) => t.input)).toEqual(['one', 'two', 'three']);
    for (const again of [
      ['runs', 'wait', runId, '--json'],
      ['run', '--resume', runId, '--json'],
    ]) {
      const r = await w.gaxx(again);
      expect(r.code, r.stderr).toBe(0);
      expect(tasksOf(r.stdout)).toEqual(own);
    }
    // `runs show` gives each stored result its record too (--json `input`, an INPUT column).
    const show = await w.gaxx(['runs', 'show', runId, '--json']);
    expect(show.code, show.stderr).toBe(0);
    const shown = (JSON.parse(show.stdout) as { results: Array<Record<string, unknown>> }).results;
    expect(shown.map((t) => [t.taskId, t.input])).toEqual(own.map((t) => [t.taskId, t.input]));
    const table = await w.gaxx(['runs', 'show', runId]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^TASK\s+INPUT\s+HOST/m);
    expect(table.stdout).toMatch(/^2\s+two\s/m);
    // People's output: each line labelled with the host's name in the fleet, not its agent's address.
    const human = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', file, '--', 'echo', '{}']);
    expect(human.code, human.stderr).toBe(0);
    const humanId = /gaxx: run (\S+)/.exec(human.stderr)?.[1] as string;
    const lines = (stdout: string): string[] => stdout.split('\n').filter(Boolean).sort();
    expect(lines(human.stdout)).toHaveLength(3);
    expect(human.stdout).not.toMatch(/127\.0\.0\.1/);
    for (const again of [
      ['runs', 'wait', humanId],
      ['run', '--resume', humanId],
    ]) {
      const r = await w.gaxx(again);
      expect(r.code, r.stderr).toBe(0);
      expect(lines(r.stdout)).toEqual(lines(human.stdout));
    }
  });

  it('`runs cancel` of a run that is already done says so and changes nothing', async () => {
    const r = await w.gaxx(['run', '--fleet', w.fleet, '--', 'true']);
    expect(r.code, r.stderr).toBe(0);
    const runId = /gaxx: run (\S+)/.exec(r.stderr)?.[1] as string;
    expect((await record(runId))?.state).toBe('done');
    const c = await w.gaxx(['runs', 'cancel', runId]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toContain(`run ${runId} is already done: every task has its result; nothing to cancel`);
    const j = await w.gaxx(['runs', 'cancel', runId, '--json']);
    expect(JSON.parse(j.stdout)).toEqual({ runId, cancelled: false, withdrawn: 0, state: 'done' });
    expect((await record(runId))?.state).toBe('done');
  });
});
