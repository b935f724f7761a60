// The suite's up-front check for a crowd of processes of the test agents' user (test/global-setup.ts).
import { describe, expect, it } from 'vitest';
import { MAX_FOREIGN_AGENT_THREADS, threadsOf } from '../global-setup.js';

const status = (uid: number, threads: number) =>
  `Name:\tnode\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\nGid:\t${uid}\nThreads:\t${threads}\n`;

describe('threadsOf', () => {
  it("counts the threads of the user's processes only", () => {
    expect(threadsOf(65534, [status(65534, 11), status(0, 40), status(65534, 7), status(1000, 3)])).toBe(18);
    expect(threadsOf(65534, [status(0, 40)])).toBe(0);
  });

  /** A local fleet of `n` agents as nobody: agent, launcher and warm sandboxes (bwrap and dash, two each). */
  const fleet = (n: number) =>
    Array.from({ length: n }, () => [status(65534, 11), status(65534, 7), status(65534, 1), status(65534, 1), status(65534, 1), status(65534, 1)]).flat();

  it('reaches the limit with a 50-agent local fleet, and with the 11-agent one that made the limits tests fail', () => {
    expect(threadsOf(65534, fleet(50))).toBeGreaterThan(MAX_FOREIGN_AGENT_THREADS);
    expect(threadsOf(65534, fleet(11))).toBeGreaterThan(MAX_FOREIGN_AGENT_THREADS);
  });

  it('leaves room for a small local fleet beside the suite', () => {
    expect(threadsOf(65534, fleet(1))).toBeLessThan(MAX_FOREIGN_AGENT_THREADS);
    expect(threadsOf(65534, fleet(5))).toBeLessThan(MAX_FOREIGN_AGENT_THREADS);
  });
});
