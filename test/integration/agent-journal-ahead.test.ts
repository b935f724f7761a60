// An agent killed after it took a task and handed it to its launcher, but before the launcher
// said the task's process started: the launcher may have started it (its side effects done),
// so the agent restarted on the same dirs reports it lost in the restart when asked for it
// again (same exec id), and never starts it a second time. The window is held open by stopping
// the launcher (SIGSTOP): the spawn request sits unread in its pipe while the agent counts the
// task as running.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOST_IN_RESTART, type ExecRequest, type InfoResponse__Output } from '../../proto/index.js';
import { markerDir, startAgent, type AgentProcess } from '../helpers/agent.js';
import { useAgentWorld } from '../helpers/agent-world.js';
import { execCollect, exitOf, rawAgentClient, unary, type RawClients } from '../helpers/grpc.js';
import { eventually } from '../helpers/poll.js';
import { childPids, deadOrZombie, statFields } from '../helpers/procs.js';

// No sandboxes started ahead: the launcher is the agent's only child.
const w = useAgentWorld('gaxx-journal-ahead', () => ({ args: ['--warm-sandboxes', '0'] }));

/** The agent's task launcher (its child running the launcher's script), once it is there. */
async function launcherOf(a: AgentProcess): Promise<number> {
  let found = 0;
  const cmdline = (pid: number): string => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return '';
    }
  };
  await eventually(() => (found = childPids(a.pid).find((p) => /gaxx-launcher|launcher-main/.test(cmdline(p))) ?? 0) > 0, 30_000, 20);
  expect(found).toBeGreaterThan(0);
  return found;
}

async function running(c: RawClients): Promise<number> {
  const info = await unary<object, InfoResponse__Output>(c.agent.Info.bind(c.agent), {});
  return info.ok ? info.value.runningTasks : -1;
}

describe('an agent killed between taking a task and its start', () => {
  it('reports the task lost in the restart when asked for it again, and never starts it', async () => {
    const first = w.agent;
    const marker = join(markerDir('journal-ahead'), 'ran');
    const req: ExecRequest = { taskId: 'ahead-1', argv: ['sh', '-c', 'echo ran >> "$0"', marker], timeoutMs: 60_000 };
    const launcher = await launcherOf(first);
    process.kill(launcher, 'SIGSTOP');
    expect(await eventually(() => statFields(launcher)?.[0] === 'T', 10_000, 10)).toBe(true);
    // The agent takes the task and writes its spawn request to the stopped launcher.
    const lost = execCollect(w.op.agent, req, undefined, 60_000);
    expect(await eventually(async () => (await running(w.op)) === 1, 30_000, 20)).toBe(true);
    first.kill('SIGKILL');
    await first.exited;
    process.kill(launcher, 'SIGKILL');
    expect(await eventually(() => deadOrZombie(launcher), 10_000, 10)).toBe(true);
    expect((await lost).error).toBeDefined();
    // Same data dir and state dir: the agent comes back from its journal.
    const again = await startAgent({ certsDir: w.pki.agent.dir, dataDir: first.dataDir, args: ['--warm-sandboxes', '0'] });
    const c = rawAgentClient(again.address, w.pki.clients.operator.dir);
    try {
      const r = await execCollect(c.agent, req, undefined, 60_000);
      expect(r.error).toBeUndefined();
      expect(exitOf(r)).toMatchObject({ reason: LOST_IN_RESTART });
      expect(r.events[0]?.started).toMatchObject({ replayed: true });
      expect(existsSync(marker)).toBe(false);
      const info = await unary<object, InfoResponse__Output>(c.agent.Info.bind(c.agent), {});
      expect(info.ok && Number(info.value.tasksStartedTotal)).toBe(0);
      // A new task runs there as ever.
      const next = await execCollect(c.agent, { ...req, taskId: 'ahead-2' }, undefined, 60_000);
      expect(exitOf(next)).toMatchObject({ code: 0, reason: '' });
      expect(readFileSync(marker, 'utf8')).toBe('ran\n');
    } finally {
      c.close();
    }
  }, 180_000);
});
