/**
 * Retiring the agents of hosts gaxx did not rent (an SSH inventory) when their fleet is deleted:
 * the machines stay, the agent must not. Bootstrap disabled root login on them, so gaxx logs in
 * as gx (its own key, host key checked against known_hosts, never trusted anew) and, with gx's
 * own rights only: stops the agent (the supervisor's process group, or the systemd unit's main
 * process, which exits cleanly so Restart=on-failure leaves it down) and deletes the agent's key
 * and certificates, so it cannot start again with the fleet's identity. The unit file, the
 * agent's code and the hardening stay (removing them needs root, which gaxx no longer has).
 */
import { readFileSync } from 'node:fs';
import { GaxxError, isGaxxError } from '../../proto/index.js';
import { layout, supervisorGroupShell } from '../bootstrap/index.js';
import type { GaxxConfig } from '../config.js';
import { connectSsh, execRemote } from '../ssh/index.js';
import type { HostRecord } from '../state.js';
import { fleetKnownHosts } from './bootstrap-step.js';

/** Runs as gx: prints `stopped=supervisor|systemd|none` and `credentials=removed`. */
export const RETIRE_SCRIPT = [
  'set -u',
  supervisorGroupShell(),
  'stopped=none',
  'gone=',
  'if [ -n "$sup" ] && kill -TERM -"$sup" 2>/dev/null; then stopped=supervisor; gone="-$sup"; fi',
  `main=$(systemctl show -p MainPID --value ${layout.UNIT_NAME} 2>/dev/null || true)`,
  'if [ -n "$main" ] && [ "$main" != 0 ] && kill -TERM "$main" 2>/dev/null; then stopped=systemd; gone=$main; fi',
  // The agent lets running tasks finish (its shutdown grace): wait, bounded, until it has ended.
  'if [ "$stopped" != none ]; then i=0; while kill -0 "$gone" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; fi',
  'if [ -n "$gone" ] && kill -0 "$gone" 2>/dev/null; then echo "the agent did not stop within 60 s" >&2; exit 1; fi',
  'echo "stopped=$stopped"',
  `rm -f ${layout.CERTS_DIR}/key.pem ${layout.CERTS_DIR}/cert.pem && echo credentials=removed`,
].join('\n');

/** One host's retirement. */
export type RetireOutcome = { name: string; stopped: 'supervisor' | 'systemd' | 'none' } | { name: string; error: GaxxError };

async function retireOne(config: GaxxConfig, h: HostRecord, deadlineMs: number): Promise<RetireOutcome> {
  const address = h.ipv4 as string;
  const port = h.ssh?.port ?? 22;
  try {
    const policy = { kind: 'known-hosts' as const, knownHosts: fleetKnownHosts(config), acceptNew: false };
    const client = await connectSsh({ host: address, port, user: layout.AGENT_USER, privateKey: readFileSync(config.paths.sshPrivateKey) }, policy, {
      deadlineMs,
    });
    try {
      const r = await execRemote(client, 'sh -s', { input: RETIRE_SCRIPT, timeoutMs: 60_000 });
      const stopped = /^stopped=(supervisor|systemd|none)$/m.exec(r.stdout)?.[1] as 'supervisor' | 'systemd' | 'none' | undefined;
      if (!stopped || !/^credentials=removed$/m.test(r.stdout)) {
        throw new GaxxError('FAILED_PRECONDITION', `retiring the agent on ${address} failed: ${(r.stderr || r.stdout).trim().slice(0, 200)}`);
      }
      return { name: h.name, stopped };
    } finally {
      client.end();
    }
  } catch (e) {
    const error = isGaxxError(e) ? e : new GaxxError('UNAVAILABLE', `retiring the agent on ${address} failed: ${(e as Error).message}`, { cause: e });
    return { name: h.name, error };
  }
}

/** Retires the agent of every host of the fleet that got one (ready, or created and maybe half-installed). */
export async function retireAgents(config: GaxxConfig, hosts: HostRecord[], deadlineMs = 30_000): Promise<RetireOutcome[]> {
  const reachable = hosts.filter((h) => h.ipv4 && (h.status === 'ready' || h.status === 'created'));
  return Promise.all(reachable.map((h) => retireOne(config, h, deadlineMs)));
}
