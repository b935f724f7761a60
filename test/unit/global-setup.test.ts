// The up-front check for a crowd of processes of the test agents' user (test/helpers/agent-user.ts),
// made by the suite (test/global-setup.ts) and by the benches that start agents (bench/lib/agent-room.ts).
import { describe, expect, it } from 'vitest';
import { MAX_FOREIGN_AGENT_THREADS, agentUserCrowding, agentUserRoom, threadsOf } from '../helpers/agent-user.js';

const status = (uid: number, threads: number) =>
  `Name:\tnode\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\nGid:\t${uid}\nThreads:\t${threads}\n`;

/** A local fleet of `n` agents as nobody: agent, launcher and warm sandboxes (bwrap and dash, two each). */
const fleet = (n: number) =>
  Array.from({ length: n }, () => [status(65534, 11), status(65534, 7), status(65534, 1), status(65534, 1), status(65534, 1), status(65534, 1)]).flat();

describe('threadsOf', () => {
  it("counts the threads of the user's processes only", () => {
    expect(threadsOf(65534, [status(65534, 11), status(0, 40), status(65534, 7), status(1000, 3)])).toBe(18);
    expect(threadsOf(65534, [status(0, 40)])).toBe(0);
  });

  it('reaches the limit with a 50-agent local fleet, and with the 11-agent one that made the limits tests fail', () => {
    expect(threadsOf(65534, fleet(50))).toBeGreaterThan(MAX_FOREIGN_AGENT_THREADS);
    expect(threadsOf(65534, fleet(11))).toBeGreaterThan(MAX_FOREIGN_AGENT_THREADS);
  });

  it('leaves room for a small local fleet beside the suite', () => {
    expect(threadsOf(65534, fleet(1))).toBeLessThan(MAX_FOREIGN_AGENT_THREADS);
    expect(threadsOf(65534, fleet(5))).toBeLessThan(MAX_FOREIGN_AGENT_THREADS);
  });
});

describe('agentUserCrowding', () => {
  it('names the crowd and what to do, as root, beside a large fleet', () => {
    const why = agentUserCrowding(fleet(50), true);
    expect(why).toMatch(/^1100 threads already run as uid 65534 \(nobody\).*RLIMIT_NPROC.*gaxx delete <fleet> --yes/);
  });

  it('is quiet with room left, and when we are not root (agents then run as we do)', () => {
    expect(agentUserCrowding(fleet(2), true)).toBeUndefined();
    expect(agentUserCrowding(fleet(50), false)).toBeUndefined();
  });
});

describe('agentUserRoom', () => {
  const zombie = (uid: number) => status(uid, 1).replace('State:\tS (sleeping)', 'State:\tZ (zombie)');
  /** Reads that return the given lists in turn (the last one from then on), counted. */
  const reads = (...lists: string[][]) => {
    let n = 0;
    const read = () => lists[Math.min(n++, lists.length - 1)] as string[];
    return { read, count: () => n };
  };

  it('reports a crowd of live processes at once', async () => {
    const r = reads(Array.from({ length: 200 }, () => status(65534, 1)));
    expect(await agentUserRoom(10_000, r.read, true)).toMatch(/^200 threads/);
    expect(r.count()).toBe(1);
  });

  it('waits while the crowd is of ended processes not reaped yet, and is quiet once they are', async () => {
    const r = reads(
      Array.from({ length: 200 }, () => zombie(65534)),
      Array.from({ length: 200 }, () => zombie(65534)),
      [status(65534, 20)],
    );
    expect(await agentUserRoom(10_000, r.read, true)).toBeUndefined();
    expect(r.count()).toBe(3);
  });

  it('reports zombies still there when the wait is over', async () => {
    const r = reads(Array.from({ length: 200 }, () => zombie(65534)));
    expect(await agentUserRoom(600, r.read, true)).toMatch(/^200 threads/);
    expect(r.count()).toBeGreaterThan(1);
  });
});
