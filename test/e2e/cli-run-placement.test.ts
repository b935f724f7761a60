// Where the built CLI's `gaxx run` (no daemon: it works on the queue itself) places tasks, with
// real agents of a registered fleet on a real redis-server: two idle agents share a run's tasks
// from its first task.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCertDir } from '../../certs/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { jsonLines } from '../helpers/cli.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';
import { taskGate } from '../helpers/gate.js';
import { eventually } from '../helpers/poll.js';

type Line = Record<string, unknown>;
const taskLines = (stdout: string): Line[] => jsonLines(stdout).filter((l) => l.type === 'task');

/** A task list of `n` records (1..n) in `dir`. */
function taskList(dir: string, n: number): string {
  const f = join(dir, `tasks-${n}.txt`);
  writeFileSync(f, Array.from({ length: n }, (_, i) => `${i + 1}\n`).join(''));
  return f;
}

/** How many of `lines` ran on each agent (by address). */
function byHost(lines: Line[]): Record<string, number> {
  const n: Record<string, number> = {};
  for (const l of lines) n[String(l.host)] = (n[String(l.host)] ?? 0) + 1;
  return n;
}

describe('two idle agents', () => {
  let w: CliWorld;

  beforeAll(async () => {
    w = await cliWorld(2, 'bf');
  }, 120_000);

  afterAll(async () => {
    await w?.close();
  });

  /** The tasks the agents run now, asked with the operator certificate. */
  async function running(): Promise<number> {
    const creds = loadCertDir(join(w.home, 'config', 'operator'));
    const counts = await Promise.all(
      w.agents.map(async (a) => {
        const c = AgentClient.connect({ address: a.address }, creds);
        try {
          return (await c.info()).runningTasks;
        } finally {
          c.close();
        }
      }),
    );
    return counts.reduce((x, y) => x + y, 0);
  }

  it('share the first run of a fresh scheduler half and half (least loaded from its first task)', async () => {
    // Open long enough for a loaded machine to start all 20.
    const gate = taskGate(600);
    try {
      const tasks = taskList(w.scratch('gxb-'), 20);
      // Every task holds until all 20 run: where each went is placement's doing alone.
      const run = w.spawnGaxx(['run', '--fleet', 'bf', '--tasks', tasks, '--json', '--', 'sh', '-c', gate.wait, '_', '{}']);
      expect(await eventually(async () => (await running()) === 20, 300_000, 50), run.stderr()).toBe(true);
      gate.open();
      const done = await run.done;
      expect(done.code, run.stderr()).toBe(0);
      const split = byHost(taskLines(run.stdout()));
      expect(Object.values(split).reduce((x, y) => x + y, 0)).toBe(20);
      for (const a of w.agents) expect(Math.abs((split[a.address] ?? 0) - 10), JSON.stringify(split)).toBeLessThanOrEqual(1);
    } finally {
      gate.remove();
    }
  }, 400_000);
});
