// Output lost to the run's output budget is said, in every human view: the built CLI, a real
// redis-server and real agents. The budget is used up ahead of the tasks' output by raising the
// run's stored-output count in Redis, as earlier output of the run would have.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, redisSettingsFromUrl, waitReady } from '../../scheduler/index.js';
import { runBytesKey, RUN_OUTPUT_BUDGET_BYTES } from '../../scheduler/queue/results.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';
import { taskGate } from '../helpers/gate.js';

let w: CliWorld;
let redis: Redis;

beforeAll(async () => {
  w = await cliWorld(2);
  redis = createRedis(redisSettingsFromUrl(w.redis.url), 'producer') as Redis;
  await waitReady(redis);
});

afterAll(async () => {
  redis?.disconnect();
  await w?.close();
});

const OVER = "output not stored: over the run's output budget";

describe("output over the run's output budget", () => {
  it('gets a line per task and a count in the summary of gaxx run, runs wait and runs show; the run still exits 0', async () => {
    const tmp = w.scratch('gxb-');
    const list = join(tmp, 'list.txt');
    writeFileSync(list, 'a\nb\nc\n');
    const gate = taskGate(60);
    try {
      // Each task prints 1000 bytes once the gate opens; the budget has room for 1500 more.
      const run = w.spawnGaxx(['run', '--fleet', w.fleet, '--tasks', list, '--', 'sh', '-c', `${gate.wait}; head -c 1000 /dev/zero | tr '\\0' x`]);
      const runId = /^gaxx: run (\S+)$/.exec(await run.line('stderr', (l) => l.startsWith('gaxx: run ')))?.[1] as string;
      await redis.set(runBytesKey(runId), String(RUN_OUTPUT_BUDGET_BYTES - 1500), 'PX', 60_000);
      gate.open();
      const end = await run.done;
      // Every task succeeded: the exit code says so; what was lost is said beside it.
      expect(end.code, end.stderr).toBe(0);
      const cut = end.stdout.split('\n').filter((l) => l.startsWith('== ') && l.includes(OVER));
      expect(cut, end.stdout).toHaveLength(2);
      for (const l of cut) expect(l).toMatch(/^== \S+ \[\d\]: succeeded \(exit 0, \d+ ms; output truncated, output not stored/);
      // The one task whose output was stored printed it.
      expect(end.stdout.match(/x{1000}/g)).toHaveLength(1);
      expect(end.stderr).toContain('3 tasks: 3 succeeded, 0 failed, 0 timed out, 0 unknown, 2 with output cut');

      const waited = await w.gaxx(['runs', 'wait', runId]);
      expect(waited.code, waited.stderr).toBe(0);
      expect(waited.stdout.split('\n').filter((l) => l.startsWith('== ') && l.includes(OVER))).toHaveLength(2);
      expect(waited.stderr).toContain('2 with output cut');

      const shown = await w.gaxx(['runs', 'show', runId]);
      expect(shown.code, shown.stderr).toBe(0);
      expect(shown.stdout).toContain('2 tasks with output cut');
      expect(shown.stdout.split('\n').filter((l) => l.includes(OVER))).toHaveLength(2);
      const json = JSON.parse((await w.gaxx(['runs', 'show', runId, '--json'])).stdout) as { results: Array<{ truncated: boolean; error?: string }> };
      expect(json.results.filter((r) => r.truncated && r.error === OVER)).toHaveLength(2);
    } finally {
      gate.open();
      gate.remove();
    }
  });
});
