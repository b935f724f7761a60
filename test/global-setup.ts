/**
 * Before any test: when we are root, test agents run as nobody (test/helpers/agent.ts), and a
 * task's process limit (RLIMIT_NPROC, 1024 by default) counts every process and thread of that
 * user. Something else already running as nobody in numbers, such as a local gaxx fleet (a
 * 50-agent one holds ~1,200), makes the tasks of test agents fail to start ("bwrap: Creating new
 * namespace failed: Resource temporarily unavailable") all over the suite. Say so once, up front.
 */
import { readFileSync } from 'node:fs';
import { AGENT_UID } from './helpers/agent.js';
import { allPids } from './helpers/procs.js';

/**
 * Above this many threads of the agent user already running, the suite's tasks would not start.
 * The tightest budget is agent-limits.test.ts's: its tasks get a process limit of 256, which
 * counts these threads, the suite's own agents (two files at a time; an agent with its launcher
 * and warm sandboxes holds ~20) and the task's own processes. With an 11-agent local fleet
 * running (~220 threads, under the 256 this was) that file's tasks failed to start.
 */
export const MAX_FOREIGN_AGENT_THREADS = 128;

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

function* procStatuses(): Generator<string> {
  for (const pid of allPids()) {
    try {
      yield readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      // gone meanwhile
    }
  }
}

export default function setup(): void {
  if (process.getuid?.() !== 0) return;
  const n = threadsOf(AGENT_UID, procStatuses());
  if (n > MAX_FOREIGN_AGENT_THREADS)
    throw new Error(
      `${n} threads already run as uid ${AGENT_UID} (nobody), the user test agents run as: their tasks would hit the process limit (RLIMIT_NPROC) and fail all over the suite. ` +
        `A local gaxx fleet is the usual cause: delete it first (gaxx delete <fleet> --yes), then run the tests again.`,
    );
}
