// bench:scheduler's latency phases (bench/lib/latency-phases.ts): the traced connector reports an
// Exec's moments in order against a real agent and changes nothing of what the caller gets, and
// each phase's median counts only the runs that have both its moments. Speed is not asserted.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPhases, phaseMedians, tracingConnector, type LinkMoment, type RunMoments } from '../../bench/lib/latency-phases.js';
import { loadCertDir } from '../../certs/index.js';
import type { ExecEvent__Output } from '../../proto/index.js';
import { agentConnector } from '../../scheduler/dispatch/connector.js';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { makePki, type Pki } from '../helpers/pki.js';

let dir: string;
let pki: Pki;
let agent: AgentProcess;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-bench-phases-'));
  pki = await makePki(dir);
  agent = await startAgent({ certsDir: pki.agent.dir, metrics: false });
});
afterAll(async () => {
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe('latency phases', () => {
  it('traces an Exec to a real agent in order, passing every event and call through', async () => {
    const marks: Array<[LinkMoment, number]> = [];
    // The operator certificate: the agent runs its unsigned Exec (a scheduler's must carry a signed task).
    const connect = tracingConnector(agentConnector(loadCertDir(pki.clients.operator.dir)), (m, at) => marks.push([m, at]));
    const link = connect({ address: agent.address });
    try {
      expect((await link.info()).version).not.toBe('');
      expect(await link.health()).toBe('SERVING');
      const events: ExecEvent__Output[] = [];
      const before = performance.now();
      for await (const ev of link.exec({ taskId: 'phases-1', argv: ['sh', '-c', 'echo out; exit 4'] })) events.push(ev);
      const after = performance.now();
      expect(events[0]?.started?.pid).toBeGreaterThan(0);
      expect(Buffer.concat(events.flatMap((e) => (e.stdout ? [e.stdout] : []))).toString()).toBe('out\n');
      expect(events.at(-1)?.exit?.code).toBe(4);
      expect(marks.map(([m]) => m)).toEqual(['execCalled', 'started', 'exited']);
      const times = [before, ...marks.map(([, t]) => t), after];
      for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1] as number);
      expect(await link.cancel('no-such-task')).toBe(false);
    } finally {
      link.close();
    }
  });

  it('takes each phase median over the runs that have both its moments', () => {
    const runs: RunMoments[] = [
      { start: 0, enqueued: 2, execCalled: 5, started: 9, exited: 10, done: 14 },
      { start: 100, enqueued: 104, execCalled: 110, started: 111, exited: 113, done: 120 },
      { start: 200, enqueued: 203, execCalled: 206, started: 212, exited: 215, done: 216 },
      // The worker never called Exec (say, it failed before): only enqueue counts.
      { start: 300, enqueued: 310, done: 330 },
    ];
    const p = phaseMedians(runs);
    expect(p).toEqual({ enqueue: 3.5, 'pick-up': 3, 'to started': 4, 'to exit': 2, 'result back': 4 });
    expect(formatPhases(p)).toBe('enqueue 3.5, pick-up 3.0, to started 4.0, to exit 2.0, result back 4.0');
    const none = phaseMedians([{ start: 0, enqueued: 1, done: 2 }]);
    expect(none['pick-up']).toBeUndefined();
    expect(formatPhases(none)).toContain('pick-up -');
  });
});
