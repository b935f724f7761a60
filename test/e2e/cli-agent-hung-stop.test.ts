// A Ctrl-C while `gaxx exec` waits for an agent that accepted its connection and never answers
// (gaxx-agent stopped by SIGSTOP: a paused machine, a hung process) ends it at once with
// CANCELLED (130): nothing was sent, so nothing is left running; before, it waited out the
// connect timeout and ended with UNAVAILABLE (12). The agent, running again, never started the
// task and serves the next one. Real agent over mTLS and the built CLI.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { auditEvents, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { runGaxx, spawnGaxx, stopAllGaxx } from '../helpers/cli.js';
import { homeAgentCerts, initHome } from '../helpers/cli-world.js';
import { eventually } from '../helpers/poll.js';
import { connectedTo } from '../helpers/ports.js';

let home: string;
let agent: AgentProcess;
let stopped: number | undefined;

beforeAll(async () => {
  home = await initHome('gxah-');
  agent = await startAgent({ certsDir: await homeAgentCerts(home) });
});

afterAll(async () => {
  await stopAllGaxx();
  if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
  await stopAllAgents();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('a stop while gaxx exec waits for an agent that does not answer', () => {
  it('ends at once: CANCELLED (130), the task never started, the agent serves on', { timeout: 60_000 }, async () => {
    process.kill((stopped = agent.pid), 'SIGSTOP');
    const cli = spawnGaxx(['exec', '--agent', agent.address, '--task-id', 'hung-stop-1', '--', 'true'], { home });
    try {
      // Connected, its handshake unanswered: the CLI waits for the agent now.
      expect(await eventually(() => connectedTo(agent.port), 30_000, 20)).toBe(true);
      cli.kill('SIGINT');
      const exit = await cli.done;
      expect(exit.stderr).toContain('task hung-stop-1 cancelled before it started [CANCELLED]');
      expect(exit.stderr).not.toContain('UNAVAILABLE');
      expect(exit.code).toBe(exitCodeFor('CANCELLED'));
    } finally {
      process.kill(agent.pid, 'SIGCONT');
      stopped = undefined;
    }
    // The agent answers again, and the task that was stopped before it was sent is not among those it ran.
    const next = await runGaxx(['exec', '--agent', agent.address, '--task-id', 'hung-stop-2', '--', 'true'], { home });
    expect(next.code).toBe(0);
    const ids = auditEvents(agent.auditLog).map((e) => e.taskId);
    expect(ids).toContain('hung-stop-2');
    expect(ids).not.toContain('hung-stop-1');
  });
});
