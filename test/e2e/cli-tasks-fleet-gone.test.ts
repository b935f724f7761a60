// A task list's fleet that stops being registered while its gaxx run still reads input (deleted,
// or Redis lost its data): the next batch is refused by the queue. The run fails for it, as it
// does for input it cannot read: NOT_FOUND naming the fleet, exit 4, a summary saying from which
// record nothing was enqueued, and a result for every task it had enqueued; not a bare "invalid
// task data" error (exit 2, a usage error) without a summary. The built CLI, real agents, a real
// redis-server.
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { forgetFleet } from '../../scheduler/index.js';
import { jsonLines } from '../helpers/cli.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';
import { taskGate } from '../helpers/gate.js';
import { eventually } from '../helpers/poll.js';
import { markerDir } from '../helpers/task-writable.js';
import { withRedisAt } from '../helpers/redis.js';

let w: CliWorld;

beforeAll(async () => {
  w = await cliWorld(2);
});

afterAll(async () => {
  await w?.close();
});

describe('a task list whose fleet goes while its input is read', () => {
  it('fails NOT_FOUND (exit 4) with its summary and a result for each enqueued task', { timeout: 120_000 }, async () => {
    const gate = taskGate();
    const marks = markerDir('gxfg');
    const run = w.spawnGaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--json', '--', 'sh', '-c', `touch "${marks}/$1"; ${gate.wait}; echo "$1"`, '_', '{}']);
    try {
      run.child.stdin?.write('a\nb\n');
      expect(await eventually(() => readdirSync(marks).length >= 2, 60_000), run.stderr()).toBe(true);
      await withRedisAt(w.redis.url, (redis) => forgetFleet(redis, w.fleet));
      run.child.stdin?.end('c\n');
      const ran = await run.done;
      expect(ran.code, run.stderr()).toBe(exitCodeFor('NOT_FOUND'));
      expect(exitCodeFor('NOT_FOUND')).toBe(4);
      const lines = jsonLines(run.stdout());
      // a and b were enqueued: each has its result (the run stopped them); c never was.
      const tasks = lines.filter((l) => l.type === 'task');
      expect(tasks.map((t) => t.input).sort()).toEqual(['a', 'b']);
      for (const t of tasks) expect(t.outcome).toBe('cancelled');
      expect(lines.at(-1)).toMatchObject({
        type: 'summary',
        state: 'failed',
        total: 2,
        cancelled: 2,
        notEnqueuedFrom: 3,
        failure: { code: 'NOT_FOUND', message: expect.stringContaining(`unknown fleet '${w.fleet}'`) },
      });
      expect(run.stderr()).toMatch(
        new RegExp(`run \\S+ failed: unknown fleet '${w.fleet}' .*not registered in Redis.*\\[NOT_FOUND\\]; records from 3 on were never enqueued`),
      );
      expect(run.stderr()).not.toContain('invalid task data');
    } finally {
      gate.open();
      run.kill('SIGKILL');
    }
  });
});
