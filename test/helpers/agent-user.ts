/**
 * Room left for the agents this process starts as nobody (test/helpers/agent.ts, when we are
 * root): a task's process limit (RLIMIT_NPROC, 1024 by default) counts every process and thread
 * of that user. Something else already running as nobody in numbers, such as a local gaxx fleet
 * (a 50-agent one holds ~1,200), makes their warm sandboxes fail to start ("bwrap: Creating new
 * namespace failed: Resource temporarily unavailable"; the agent then starts every task cold) and
 * then their tasks. The test suite refuses to start then (test/global-setup.ts), and so do the
 * benches that start agents (bench/lib/agent-room.ts): their figures would be of cold starts.
 */
import { readFileSync } from 'node:fs';
import { AGENT_UID } from './agent.js';
import { eventually } from './poll.js';
import { allPids } from './procs.js';

/**
 * Above this many threads of the agent user already running, the agents' tasks would not start.
 * The tightest budget is agent-limits.test.ts's: its tasks get a process limit of 256, which
 * counts these threads, the suite's own agents (two files at a time; an agent with its launcher
 * and warm sandboxes holds ~20) and the task's own processes. With an 11-agent local fleet
 * running (~220 threads, under the 256 this was) that file's tasks failed to start.
 */
export const MAX_FOREIGN_AGENT_THREADS = 128;

/** A process that has ended and waits to be reaped, by its `/proc/<pid>/status`. */
const ZOMBIE = /^State:\s+Z/m;

/** Threads of `uid` in the `/proc/<pid>/status` texts given (real uid, the first of the Uid line). */
export function threadsOf(uid: number, statuses: Iterable<string>): number {
  let n = 0;
  for (const s of statuses) {
    const owner = /^Uid:\s+(\d+)/m.exec(s)?.[1];
    if (owner === undefined || Number(owner) !== uid) continue;
    n += Number(/^Threads:\s+(\d+)/m.exec(s)?.[1] ?? 1);
  }
  return n;
}

/** The `/proc/<pid>/status` text of every process still there. */
export function* procStatuses(): Generator<string> {
  for (const pid of allPids()) {
    try {
      yield readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      // gone meanwhile
    }
  }
}

/**
 * Why agents started now as nobody would not run their tasks as they should (the agent user
 * already runs more than MAX_FOREIGN_AGENT_THREADS threads), or undefined: always undefined when
 * we are not root (the agents then run as we do).
 */
export function agentUserCrowding(statuses: Iterable<string> = procStatuses(), root = process.getuid?.() === 0): string | undefined {
  if (!root) return undefined;
  const n = threadsOf(AGENT_UID, statuses);
  if (n <= MAX_FOREIGN_AGENT_THREADS) return undefined;
  return (
    `${n} threads already run as uid ${AGENT_UID} (nobody), the user test agents run as: their tasks would hit the process limit (RLIMIT_NPROC), ` +
    `and start cold or not at all. A local gaxx fleet is the usual cause: delete it first (gaxx delete <fleet> --yes), then run again.`
  );
}

/**
 * agentUserCrowding, asked again every 250 ms for up to `waitMs` while the crowd is of processes
 * that have ended and wait to be reaped (zombies count against RLIMIT_NPROC until then: right
 * after a bench or a suite, hundreds of its agents' can linger for seconds); a crowd of live
 * ones is reported at once.
 */
export async function agentUserRoom(
  waitMs = 30_000,
  read: () => string[] = () => [...procStatuses()],
  root = process.getuid?.() === 0,
): Promise<string | undefined> {
  let why: string | undefined;
  // Settled once there is room, or once the crowd is of live processes (no wait makes room then).
  await eventually(
    () => {
      const statuses = read();
      why = agentUserCrowding(statuses, root);
      const live = statuses.filter((s) => !ZOMBIE.test(s));
      return why === undefined || agentUserCrowding(live, root) !== undefined;
    },
    waitMs,
    250,
  );
  return why;
}
