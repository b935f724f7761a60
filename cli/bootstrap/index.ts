/**
 * cli/bootstrap: put a hardened gaxx-agent on hosts over SSH, in parallel, with progress. A host
 * is ready when its agent answers Health over mTLS with the expected identity
 * (spiffe://gaxx/agent/<fleet>/<name>), never after a fixed sleep. One host's failure never
 * stops the others; each result says what happened.
 */
import { isIP } from 'node:net';
import type { CertBundle, FleetCa } from '../../certs/index.js';
import { GaxxError, isGaxxError } from '../../proto/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { installOnHost, type AgentCertFiles, type BootstrapEvent, type BootstrapTarget, type InstallReport } from './install.js';
import { AGENT_PORT } from './layout.js';
import { loadAgentPayload } from './payload.js';

export { cloudInitUserData, generateHostKey, FIRST_BOOT_SSHD, type CloudInitOptions, type HostKeyPair } from './cloud-init.js';
export {
  installOnHost,
  type AgentCertFiles,
  type BootstrapEvent,
  type BootstrapStep,
  type BootstrapTarget,
  type InstallContext,
  type InstallReport,
} from './install.js';
export * as layout from './layout.js';
export { loadAgentPayload, archMatches, nodeUsable, type PayloadFile } from './payload.js';
export { nftRuleset, reloadSshdShell, SSHD_HARDENING } from './host-scripts.js';
export { renderAgentUnit, renderSupervisor, supervisorGroupShell } from './unit.js';

export interface BootstrapOptions {
  fleet: string;
  /**
   * When the fleet was created (Unix ms; gaxx spawn: its state's createdAt): each agent is started
   * with --fleet-since, and refuses work signed before it.
   */
  fleetSince?: number | undefined;
  /** The fleet CA: each agent's certificate is issued for its host's addresses. */
  ca: FleetCa;
  /** Agent certificate lifetime (default: the CA's leaf default). */
  certValidityMs?: number;
  /** Path of the bundled agent (one file; .proto files beside it are sent too). */
  agentBundle: string;
  /** The operator's client certificate, used for the readiness Health call. */
  operatorCreds: CertBundle;
  /** The operator's SSH public key, authorized for gx. */
  operatorPublicKey: string;
  /** Addresses allowed to reach 22, 8088, 9091 (the address a host sees us from is added). */
  controllerAddresses: string[];
  /** Addresses allowed to reach 9091 (Prometheus). */
  monitorAddresses?: string[];
  /** Hosts bootstrapped at once (default 32). */
  concurrency?: number;
  /** SSH: keep retrying the handshake this long (default 180 s). */
  connectDeadlineMs?: number;
  /** SSH: retry refused keys too (fresh VMs may start sshd before cloud-init wrote the key). */
  retryAuth?: boolean;
  /** How long to wait for Health after install (default 60 s). */
  readyDeadlineMs?: number;
  onProgress?: (e: BootstrapEvent) => void;
  /** Stops every host's bootstrap where it is (CANCELLED), connection attempts and waits included. */
  signal?: AbortSignal | undefined;
}

/** One host's outcome. */
export type BootstrapResult =
  | { name: string; host: string; ok: true; agentAddress: string; serial: string; report: InstallReport; ms: number }
  | { name: string; host: string; ok: false; error: GaxxError; ms: number };

/**
 * Issues each host's certificate for the key the host made and for its addresses. FleetCa
 * rewrites its register synchronously after each signature, so concurrent issues in one process
 * lose no record.
 */
function issuer(o: BootstrapOptions, serials: Map<string, string>): (t: BootstrapTarget, publicKeyPem: string) => Promise<AgentCertFiles> {
  return async (t, publicKeyPem) => {
    const hosts = [...new Set([t.host, ...t.addresses])];
    const made = await o.ca.issue({
      identity: { role: 'agent', fleet: o.fleet, host: t.name },
      hosts,
      publicKeyPem,
      ...(o.certValidityMs ? { validityMs: o.certValidityMs } : {}),
    });
    serials.set(t.name, made.serial);
    return { certPem: made.certPem, caPem: o.ca.certPem, revokedText: o.ca.revocationListText() };
  };
}

/** The agent's gRPC address for a host. */
export function agentAddress(host: string): string {
  return isIP(host) === 6 ? `[${host}]:${AGENT_PORT}` : `${host}:${AGENT_PORT}`;
}

/**
 * Waits until the agent at `address` answers Health SERVING with the expected identity.
 * IDENTITY_MISMATCH and CERT_REVOKED are final (another agent, or a revoked key, answers there);
 * anything else is retried until the deadline (DEADLINE_EXCEEDED).
 */
export async function waitHealthy(
  address: string,
  creds: CertBundle,
  expect: { fleet: string; host: string },
  deadlineMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let delay = 100;
  let last: unknown;
  while (Date.now() < deadline) {
    if (signal?.aborted) throw new GaxxError('CANCELLED', `waiting for ${address} cancelled`);
    const client = AgentClient.connect({ address, expect }, creds, { deadlineMs: 3_000, connectTimeoutMs: 3_000 });
    try {
      if ((await client.health()) === 'SERVING') return;
    } catch (e) {
      if (isGaxxError(e, 'IDENTITY_MISMATCH') || isGaxxError(e, 'CERT_REVOKED')) throw e;
      last = e;
    } finally {
      client.close();
    }
    await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
    delay = Math.min(delay * 2, 1_000);
  }
  throw new GaxxError('DEADLINE_EXCEEDED', `agent ${address} did not report healthy within ${deadlineMs} ms${last ? `: ${(last as Error).message}` : ''}`, {
    cause: last,
  });
}

async function bootstrapOne(
  t: BootstrapTarget,
  o: BootstrapOptions,
  ctx: Parameters<typeof installOnHost>[1],
  serials: Map<string, string>,
): Promise<BootstrapResult> {
  const started = Date.now();
  const progress = ctx.progress;
  try {
    const report = await installOnHost(t, ctx);
    progress({ host: t.name, step: 'wait-healthy' });
    const address = agentAddress(t.host);
    await waitHealthy(address, o.operatorCreds, { fleet: o.fleet, host: t.name }, o.readyDeadlineMs ?? 60_000, o.signal);
    progress({ host: t.name, step: 'ready', detail: address });
    return { name: t.name, host: t.host, ok: true, agentAddress: address, serial: serials.get(t.name) ?? '', report, ms: Date.now() - started };
  } catch (e) {
    const error = isGaxxError(e) ? e : new GaxxError('INTERNAL', `bootstrap of ${t.name} failed: ${(e as Error).message}`, { cause: e });
    progress({ host: t.name, step: 'failed', detail: `${error.code}: ${error.message}` });
    return { name: t.name, host: t.host, ok: false, error, ms: Date.now() - started };
  }
}

/** Bootstraps every target, `concurrency` at a time; results in the targets' order. */
export async function bootstrapHosts(targets: BootstrapTarget[], o: BootstrapOptions): Promise<BootstrapResult[]> {
  const names = new Set(targets.map((t) => t.name));
  if (names.size !== targets.length) throw new GaxxError('INVALID_ARGUMENT', 'bootstrap targets need distinct names');
  const payload = loadAgentPayload(o.agentBundle);
  const serials = new Map<string, string>();
  const ctx = {
    fleet: o.fleet,
    fleetSince: o.fleetSince,
    payload,
    issueCerts: issuer(o, serials),
    operatorPublicKey: o.operatorPublicKey,
    controllerAddresses: o.controllerAddresses,
    monitorAddresses: o.monitorAddresses ?? [],
    ...(o.connectDeadlineMs === undefined ? {} : { connectDeadlineMs: o.connectDeadlineMs }),
    ...(o.retryAuth === undefined ? {} : { retryAuth: o.retryAuth }),
    ...(o.signal ? { signal: o.signal } : {}),
    progress: o.onProgress ?? (() => undefined),
  };
  const results: BootstrapResult[] = new Array(targets.length);
  let next = 0;
  const worker = async () => {
    while (next < targets.length) {
      const i = next++;
      results[i] = await bootstrapOne(targets[i] as BootstrapTarget, o, ctx, serials);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 32, targets.length) }, worker));
  return results;
}
