/**
 * The one seam between spawn and the bootstrap (cli/bootstrap/: hardening over Ed25519 SSH,
 * agent install, waiting for Health). Spawn calls only this file.
 *
 * Cloud instances get a host key generated here: its public half is recorded in the fleet state
 * before the instance is asked for, its private half goes only into the instance's user data,
 * and the first SSH connection is checked against the recorded key. Inventory hosts are checked
 * against known_hosts (gaxx's own and the user's), trusting an unknown host only with
 * --accept-new. Providers that start their agent themselves (local) are not bootstrapped: their
 * hosts are ready once the agent answers Health as the expected identity.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FleetCa } from '../../certs/index.js';
import { GaxxError, isGaxxError } from '../../proto/index.js';
import { bootstrapHosts, cloudInitUserData, generateHostKey, waitHealthy, type BootstrapEvent, type BootstrapTarget as SshTarget } from '../bootstrap/index.js';
import type { GaxxConfig } from '../config.js';
import { operatorCredentials } from '../operator-credentials.js';
import { agentBundlePath } from '../providers/agent-bundle.js';
import { ensureSshKeyPair, KnownHosts } from '../ssh/index.js';

/** A host handed to the bootstrap. */
export interface BootstrapTarget {
  fleet: string;
  name: string;
  instanceId: string;
  address: string;
  port: number;
  user: string;
  /** SSH key file for this host (inventory); default: gaxx's key. */
  keyPath?: string | undefined;
  /** The pinned host key (cloud instances); absent: known_hosts decides. */
  hostKey?: string | undefined;
}

/** Per host: ready with its agent's address, or the error that stopped it. */
export type BootstrapOutcome = { ok: true; agentAddress: string } | { ok: false; error: GaxxError };

/** What the user data of a new instance carries, and what spawn records before the create. */
export interface UserData {
  userData: string;
  /** Public half of the host key pinned through the user data. */
  hostPublicKey: string;
}

/** What spawn needs from the bootstrap. */
export interface BootstrapStep {
  /** Whether hosts are set up over SSH (false: the provider started the agent itself). */
  readonly overSsh: boolean;
  /** cloud-init user data for a new cloud instance, with its pinned host key. */
  userData(host: { fleet: string; name: string }): Promise<UserData>;
  /** Bootstraps (or, without SSH, waits for) the hosts in parallel; one outcome per host name. */
  run(targets: BootstrapTarget[], opts: { signal: AbortSignal; onProgress?: (name: string, step: string) => void }): Promise<Map<string, BootstrapOutcome>>;
}

/** How the step behaves for the provider at hand. */
export interface StepOptions {
  /** The provider starts a certified agent itself (ProviderCapabilities.startsAgent). */
  startsAgent?: boolean | undefined;
  /** Trust unknown inventory hosts on first use (--accept-new). */
  acceptNew?: boolean | undefined;
  /** SSH: keep retrying the handshake this long (fresh VMs answer late). */
  connectDeadlineMs?: number | undefined;
  /** The fleet's TTL deadline (ms epoch): cloud VMs power themselves off at it plus a margin. */
  powerOffAt?: number | undefined;
  /** When the fleet was created (fleetSinceOf): the agents' --fleet-since. */
  fleetSince?: number | undefined;
}

/** gaxx's known_hosts plus the user's (read only). */
export function fleetKnownHosts(config: GaxxConfig): KnownHosts {
  return new KnownHosts(join(config.paths.sshDir, 'known_hosts'), [join(homedir(), '.ssh', 'known_hosts')]);
}

/** The bootstrap step for this configuration. */
export async function loadBootstrapStep(config: GaxxConfig, o: StepOptions = {}): Promise<BootstrapStep> {
  return {
    overSsh: !o.startsAgent,
    userData: async () => {
      const hostKey = generateHostKey();
      // The TTL left now (a --fill late in the fleet's life gets what remains of it).
      const ttl = o.powerOffAt === undefined ? {} : { ttlSeconds: Math.max(1, Math.ceil((o.powerOffAt - Date.now()) / 1000)) };
      return { userData: cloudInitUserData({ operatorPublicKey: key(config).publicKey, hostKey, ...ttl }), hostPublicKey: hostKey.publicKey };
    },
    run: (targets, opts) => (o.startsAgent ? waitAgents(config, targets, opts) : sshBootstrap(config, o, targets, opts)),
  };
}

async function sshBootstrap(
  config: GaxxConfig,
  o: StepOptions,
  targets: BootstrapTarget[],
  opts: Parameters<BootstrapStep['run']>[1],
): Promise<Map<string, BootstrapOutcome>> {
  const fleet = targets[0]?.fleet;
  if (!fleet) return new Map();
  const own = key(config);
  const knownHosts = fleetKnownHosts(config);
  const ssh: SshTarget[] = targets.map((t) => ({
    name: t.name,
    host: t.address,
    port: t.port,
    user: t.user,
    privateKey: readFileSync(t.keyPath ?? own.privateKeyPath),
    hostKey: t.hostKey ? { kind: 'pinned', publicKey: t.hostKey } : { kind: 'known-hosts', knownHosts, acceptNew: o.acceptNew === true, fleet },
    addresses: [t.address],
  }));
  const results = await bootstrapHosts(ssh, {
    fleet,
    fleetSince: o.fleetSince,
    ca: FleetCa.open(config.paths.caDir),
    agentBundle: agentBundlePath(),
    operatorCreds: operatorCredentials(config.paths.operatorCertDir, config.paths.caDir),
    operatorPublicKey: own.publicKey,
    controllerAddresses: [],
    // Cloud VMs may run sshd before cloud-init wrote the key: a refused key is retried too.
    retryAuth: targets.some((t) => t.hostKey !== undefined),
    ...(o.connectDeadlineMs ? { connectDeadlineMs: o.connectDeadlineMs } : {}),
    signal: opts.signal,
    onProgress: (e: BootstrapEvent) => opts.onProgress?.(e.host, e.detail ? `${e.step} ${e.detail}` : e.step),
  });
  // A pinned key that was verified goes to gaxx's known_hosts (for `gaxx ssh`; delete removes it).
  for (const [i, r] of results.entries()) {
    const t = targets[i];
    if (r.ok && t?.hostKey) knownHosts.add(t.address, t.port, t.hostKey, fleet);
  }
  return new Map(results.map((r) => [r.name, r.ok ? { ok: true, agentAddress: r.agentAddress } : { ok: false, error: r.error }]));
}

/** gaxx's SSH key pair (made by `gaxx init`, or now). */
function key(config: GaxxConfig): ReturnType<typeof ensureSshKeyPair> {
  return ensureSshKeyPair(config.paths.sshPrivateKey, config.paths.sshPublicKey, 'gaxx');
}

/** Hosts whose agent the provider started: ready once Health answers as the expected identity. */
async function waitAgents(config: GaxxConfig, targets: BootstrapTarget[], opts: Parameters<BootstrapStep['run']>[1]): Promise<Map<string, BootstrapOutcome>> {
  const creds = operatorCredentials(config.paths.operatorCertDir, config.paths.caDir);
  const out = new Map<string, BootstrapOutcome>();
  await Promise.all(
    targets.map(async (t) => {
      const address = `${t.address}:${t.port}`;
      try {
        opts.onProgress?.(t.name, 'wait-healthy');
        await waitHealthy(address, creds, { fleet: t.fleet, host: t.name }, 60_000, opts.signal);
        opts.onProgress?.(t.name, `ready ${address}`);
        out.set(t.name, { ok: true, agentAddress: address });
      } catch (e) {
        out.set(t.name, {
          ok: false,
          error: isGaxxError(e) ? e : new GaxxError('INTERNAL', `waiting for ${t.name} failed: ${(e as Error).message}`, { cause: e }),
        });
      }
    }),
  );
  return out;
}
