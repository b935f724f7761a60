/**
 * One agent per state dir. The agent reads, changes and writes whole its task journal and its
 * revocation floor there, and sweeps what a killed run of it left mid-write: a second agent on the
 * same dir (started by hand beside the service) overwrote the first's journal (a task the first
 * had started, forgotten there, ran again on a retry) and could sweep its stage dirs. The agent
 * claims `<state>/agent.lock` (its pid, start time and boot id: proto's claim-file.ts) before it
 * touches anything there, and refuses to start while another live agent holds it; the claim of
 * an agent that is gone (killed, the machine rebooted) is taken over.
 */
import { join } from 'node:path';
import { claimMark, GaxxError, processClaimText, releaseClaim, takeProcessClaim } from '../../proto/index.js';

const STATE_LOCK = 'agent.lock';

/** Claims `stateDir` for this agent; FAILED_PRECONDITION naming the pid of the live agent that has it. */
export function claimStateDir(stateDir: string): { release(): void } {
  const path = join(stateDir, STATE_LOCK);
  const text = processClaimText();
  const got = takeProcessClaim(path, text);
  if (!got.taken) {
    const pid = claimMark(got.held)?.pid;
    throw new GaxxError(
      'FAILED_PRECONDITION',
      `another gaxx-agent${pid === undefined ? '' : ` (pid ${pid})`} runs on the state dir ${stateDir}: stop it first, or give this one its own --state-dir and --data-dir`,
      { details: { lock: path, ...(pid === undefined ? {} : { pid }) } },
    );
  }
  let released = false;
  return {
    release: () => {
      if (released) return;
      released = true;
      releaseClaim(path, (held) => held === text);
    },
  };
}
