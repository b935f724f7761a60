/**
 * Process checks for the local provider: whether a pid is still the agent we started (pids are
 * reused), and waits for an agent to listen or to exit.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { GaxxError } from '../../proto/index.js';

/**
 * Whether `pid` is a live process running `bundle` (a zombie or a reused pid is not), and, given
 * `certs`, serving with that cert dir: every installation's agents run the one installed bundle,
 * so a pid reused by another installation's agent (or another of this one's) is told apart by it.
 */
export function isAgentProcess(pid: number, bundle: string, certs?: string): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args.includes(bundle) && (certs === undefined || args.some((a, i) => a === certs && args[i - 1] === '--certs'));
  } catch {
    return false;
  }
}

/** Polls (every 25 ms, bounded) until `pid` no longer runs `bundle` (with `certs`); false on timeout. */
export async function waitForExit(pid: number, bundle: string, timeoutMs: number, certs?: string): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (isAgentProcess(pid, bundle, certs)) {
    if (Date.now() > end) return false;
    await sleep(25);
  }
  return true;
}

/**
 * Waits for the agent's "agent listening" log line (its gRPC and metrics ports), or fails with
 * UNAVAILABLE carrying the log's last lines when it exits or does not listen within `timeoutMs`;
 * details.addressInUse when it exited because its address was bound by something else
 * (the agent's refused start names EADDRINUSE).
 */
export async function waitForListening(child: ChildProcess, log: string, timeoutMs: number): Promise<{ grpc: number; metrics: number | undefined }> {
  let exited: number | string | null | undefined;
  child.once('exit', (code, signal) => (exited = code ?? signal));
  const end = Date.now() + timeoutMs;
  for (;;) {
    const text = readFileSync(log, 'utf8');
    const line = text.split('\n').find((l) => l.includes('"agent listening"'));
    if (line) {
      const l = JSON.parse(line) as { grpcPort: number; metricsPort?: number | null };
      return { grpc: l.grpcPort, metrics: l.metricsPort ?? undefined };
    }
    if (exited !== undefined || Date.now() > end) {
      const tail = text.trim().split('\n').slice(-3).join(' | ');
      if (exited === undefined) child.kill('SIGKILL');
      throw new GaxxError(
        'UNAVAILABLE',
        `gaxx-agent (pid ${child.pid}) ${exited === undefined ? `did not listen within ${timeoutMs} ms` : `exited (${exited})`}: ${tail}`,
        { details: { addressInUse: exited !== undefined && /: UNAVAILABLE: cannot listen on \S+: EADDRINUSE$/m.test(text) } },
      );
    }
    await sleep(25);
  }
}
