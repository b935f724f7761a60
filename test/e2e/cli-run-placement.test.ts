// Where the built CLI's `gaxx run` (no daemon: it works on the queue itself) places tasks, with
// real agents of a registered fleet on a real redis-server: an agent that refuses work is gone
// round, and two idle agents share a run's tasks from its first task.
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

describe('an agent that refuses work beside a healthy one', () => {
  let w: CliWorld;

  beforeAll(async () => {
    // h1 keeps more free than its disk has (--disk-reserve): it refuses every task, for as long as it runs.
    w = await cliWorld(2, 'pf', { h1: ['--disk-reserve', '1000000G'] });
  }, 120_000);

  afterAll(async () => {
    await w?.close();
  });

  it('any-host tasks run on the agent that takes them, none is held by the one that refuses', async () => {
    const tasks = taskList(w.scratch('gxp-'), 10);
    // The bound only ends a run that hangs (it took 10 minutes per refused task).
    const r = await w.gaxx(['run', '--fleet', 'pf', '--tasks', tasks, '--wait-timeout', '120s', '--json', '--', 'sh', '-c', 'echo "$1"', '_', '{}']);
    const lines = taskLines(r.stdout);
    expect(
      lines.map((l) => [l.outcome, l.host]),
      r.stderr,
    ).toEqual(Array.from({ length: 10 }, () => ['succeeded', w.agents[1]?.address]));
    expect(r.code, r.stderr).toBe(0);
  }, 180_000);

  it('a task pinned to the refusing agent waits for it and says why', async () => {
    const run = w.spawnGaxx(['run', '--fleet', 'pf', '--json', '--', 'true']);
    const [h1, h2] = w.agents.map((a) => a.address);
    const note = await run.line('stderr', (l) => l.includes('refuses new tasks'), 120_000);
    expect(note).toContain(`${h1} refuses new tasks; waiting up to 10m for it to take them again, else the task ends error: agent ${h1}: `);
    // The agent's own reason: its disk under the reserve it keeps.
    expect(note).toMatch(/the agent's disk is nearly full: .* \(--disk-reserve\)/);
    // The healthy agent's task ended (on a loaded machine it may still run when the note comes).
    await run.line('stdout', (l) => l.includes(`"host":"${h2}"`) && l.includes('"type":"task"'), 120_000);
    run.kill('SIGINT');
    const done = await run.done;
    const lines = taskLines(run.stdout());
    expect(Object.fromEntries(lines.map((l) => [l.host, l.outcome])), run.stderr()).toEqual({ [h1 as string]: 'cancelled', [h2 as string]: 'succeeded' });
    expect(done.code).toBe(130);
  }, 180_000);
});

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
