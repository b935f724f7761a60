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

  it('reaches the limit with a 50-agent local fleet (agent, launcher and warm sandboxes each)', () => {
    const fleet = Array.from({ length: 50 }, () => [
      status(65534, 11),
      status(65534, 7),
      status(65534, 1),
      status(65534, 1),
      status(65534, 1),
      status(65534, 1),
    ]).flat();
    expect(threadsOf(65534, fleet)).toBeGreaterThan(MAX_FOREIGN_AGENT_THREADS);
  });
});
