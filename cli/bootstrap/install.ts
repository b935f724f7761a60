/**
 * Installs and hardens one host over SSH, in this order: verify the host key (the connection
 * refuses a mismatch before anything is sent), probe, create gx and the directories, upload the
 * agent and (when needed) Node over SFTP with sha256 checked on the host, put them in place and
 * make the agent's key on the host (it never travels), issue the agent's certificate for that
 * key and the host's addresses and upload it, then firewall, agent service and sshd hardening in
 * one root script. Readiness is checked by the caller over mTLS.
 */
import { readFileSync } from 'node:fs';
import type ssh2 from 'ssh2';
import { GaxxError } from '../../proto/index.js';
import { onAbort } from '../abort-fanout.js';
import { connectSsh, execChecked, execRemote, uploadVerified, type HostKeyPolicy } from '../ssh/index.js';
import {
  PROBE_SCRIPT,
  installScript,
  packagesToInstall,
  parseFacts,
  placeScript,
  prepareScript,
  publicKeyFrom,
  type HostFacts,
  type PlaceScriptOptions,
} from './host-scripts.js';
import { AGENT_USER, UPLOADED_NODE } from './layout.js';
import { archMatches, nodeUsable, type PayloadFile } from './payload.js';
import { renderAgentUnit, renderSupervisor } from './unit.js';

/** The agent's cert dir contents but its key (made on the host). */
export interface AgentCertFiles {
  certPem: string;
  caPem: string;
  revokedText: string;
}

/** One host to bootstrap. */
export interface BootstrapTarget {
  /** The host's name in the fleet (the agent identity's host part). */
  name: string;
  host: string;
  port: number;
  user: string;
  privateKey: string | Buffer;
  hostKey: HostKeyPolicy;
  /** Addresses the agent's certificate names (the dialled host is always added). */
  addresses: string[];
}

export type BootstrapStep = 'connect' | 'probe' | 'certs' | 'prepare' | 'upload' | 'install' | 'wait-healthy' | 'ready' | 'failed' | 'warning';

export interface BootstrapEvent {
  host: string;
  step: BootstrapStep;
  detail?: string;
}

export interface InstallContext {
  fleet: string;
  /** When the fleet was created (Unix ms): the agent's --fleet-since. */
  fleetSince?: number | undefined;
  payload: PayloadFile[];
  /** Issues the agent's certificate for the key the host made (called only after the host key was verified). */
  issueCerts: (target: BootstrapTarget, publicKeyPem: string) => Promise<AgentCertFiles>;
  /** The operator's public key, authorized for gx (for `gaxx ssh`). */
  operatorPublicKey: string;
  controllerAddresses: string[];
  monitorAddresses: string[];
  /** The controller's Node binary and arch, uploaded when a host has none (default: this process's). */
  localNode?: { path: string; arch: string };
  connectDeadlineMs?: number;
  retryAuth?: boolean;
  /** Ctrl-C: stops connecting at once and ends a connection made (the step under way fails). */
  signal?: AbortSignal;
  progress: (e: BootstrapEvent) => void;
}

/** What install found and did on a host. */
export interface InstallReport {
  facts: HostFacts;
  nodePath: string;
  nodeUploaded: boolean;
  firewall: 'nft' | 'ufw' | 'none';
  service: 'systemd' | 'supervisor';
  warnings: string[];
}

function kv(out: string, key: string): string | undefined {
  return out
    .split('\n')
    .find((l) => l.startsWith(`${key}=`))
    ?.slice(key.length + 1)
    .trim();
}

/** Runs `script` as root: directly when the SSH user is root, else through `sudo -n`. */
function asRoot(client: ssh2.Client, facts: HostFacts, script: string, what: string): Promise<string> {
  const cmd = facts.uid === 0 ? 'sh -s' : 'sudo -n sh -s';
  return execChecked(client, cmd, what, { input: script });
}

function chooseNode(facts: HostFacts, ctx: InstallContext): { nodePath: string; upload: Buffer | undefined } {
  if (nodeUsable(facts.nodeVersion) && facts.nodePath) return { nodePath: facts.nodePath, upload: undefined };
  const local = ctx.localNode ?? { path: process.execPath, arch: process.arch };
  if (!archMatches(local.arch, facts.arch)) {
    throw new GaxxError(
      'FAILED_PRECONDITION',
      `host has no Node >= 20 and is ${facts.arch}, while this controller's Node is ${local.arch}: install Node 20+ on the host`,
    );
  }
  return { nodePath: UPLOADED_NODE, upload: readFileSync(local.path) };
}

function chooseFirewall(facts: HostFacts, packagesOk: boolean, warnings: string[]): 'nft' | 'ufw' | 'none' {
  if (facts.nft || (packagesOk && !facts.ufw && facts.apt)) return 'nft';
  if (facts.ufw) return 'ufw';
  warnings.push('neither nftables nor ufw is available: the host has NO firewall; ports 8088/9091 rely on mTLS alone');
  return 'none';
}

async function probe(client: ssh2.Client): Promise<HostFacts> {
  const r = await execRemote(client, 'sh -s', { input: PROBE_SCRIPT });
  const facts = parseFacts(r.stdout);
  if (!Number.isInteger(facts.uid)) throw new GaxxError('FAILED_PRECONDITION', `could not probe the host: ${r.stderr.trim().slice(0, 200)}`);
  if (facts.uid !== 0 && !facts.sudo) throw new GaxxError('PERMISSION_DENIED', 'the SSH user is not root and the host has no sudo');
  return facts;
}

/** Root: packages, gx, directories and a staging dir; what it found. */
async function prepare(client: ssh2.Client, facts: HostFacts, target: BootstrapTarget, ctx: InstallContext, warnings: string[]) {
  const packages = packagesToInstall(facts);
  const prep = await asRoot(client, facts, prepareScript({ packages, operatorKey: ctx.operatorPublicKey, sshUser: target.user }), 'preparing the host');
  if (kv(prep, 'sudoers') === AGENT_USER)
    throw new GaxxError('FAILED_PRECONDITION', `a sudoers entry names ${AGENT_USER}; refusing to run the agent as a user with sudo`);
  const packagesOk = kv(prep, 'packages') === 'ok';
  if (!packagesOk)
    warnings.push(
      `could not install ${packages.join(', ')} with apt: ${facts.bwrap ? '' : 'tasks cannot be isolated with bubblewrap (the agent refuses tasks in production until it is installed)'}`,
    );
  const staging = kv(prep, 'staging');
  if (!staging) throw new GaxxError('FAILED_PRECONDITION', 'the host made no staging directory');
  return { packages, packagesOk, staging };
}

/** Root: the agent files in place, the agent's key made on the host; then its certificate issued and uploaded. */
async function certify(client: ssh2.Client, facts: HostFacts, target: BootstrapTarget, ctx: InstallContext, o: PlaceScriptOptions): Promise<void> {
  const placed = await asRoot(client, facts, placeScript(o), 'making the agent key');
  const publicKeyPem = publicKeyFrom(placed);
  if (!publicKeyPem) throw new GaxxError('FAILED_PRECONDITION', 'the host printed no public key for the agent');
  const certs = await ctx.issueCerts(target, publicKeyPem);
  await uploadVerified(client, [
    { path: `${o.staging}/certs/cert.pem`, data: Buffer.from(certs.certPem) },
    { path: `${o.staging}/certs/ca.pem`, data: Buffer.from(certs.caPem) },
    { path: `${o.staging}/certs/revoked.json`, data: Buffer.from(certs.revokedText) },
  ]);
}

async function steps(client: ssh2.Client, target: BootstrapTarget, ctx: InstallContext): Promise<InstallReport> {
  const say = (step: BootstrapStep, detail?: string) => ctx.progress({ host: target.name, step, ...(detail ? { detail } : {}) });
  const warnings: string[] = [];
  say('probe');
  const facts = await probe(client);
  const node = chooseNode(facts, ctx);
  say('prepare');
  const { packages, packagesOk, staging } = await prepare(client, facts, target, ctx, warnings);
  say('upload');
  await uploadVerified(client, [
    ...ctx.payload.map((f) => ({ path: `${staging}/agent/${f.path}`, data: f.data })),
    ...(node.upload ? [{ path: `${staging}/node`, data: node.upload }] : []),
  ]);
  say('certs');
  await certify(client, facts, target, ctx, {
    staging,
    agentFiles: ctx.payload.map((f) => f.path),
    nodeUploaded: node.upload !== undefined,
    nodePath: node.nodePath,
  });
  say('install');
  const firewall = chooseFirewall({ ...facts, nft: facts.nft || (packagesOk && packages.includes('nftables')) }, packagesOk, warnings);
  const controller = [...new Set([...ctx.controllerAddresses, ...(facts.clientAddress ? [facts.clientAddress] : [])])];
  const script = installScript({
    staging,
    firewall,
    controller,
    monitors: ctx.monitorAddresses,
    systemd: facts.systemd,
    unit: renderAgentUnit(node.nodePath, ctx.fleetSince),
    supervisor: renderSupervisor(node.nodePath, ctx.fleetSince),
  });
  const out = await asRoot(client, facts, script, 'installing the agent');
  if (kv(out, 'sshd') !== 'hardened') throw new GaxxError('FAILED_PRECONDITION', 'sshd hardening did not complete');
  for (const w of warnings) say('warning', w);
  return { facts, nodePath: node.nodePath, nodeUploaded: node.upload !== undefined, firewall, service: facts.systemd ? 'systemd' : 'supervisor', warnings };
}

/**
 * Connects (host key verified first: a mismatch throws HOST_KEY_MISMATCH before anything is
 * issued or sent) and installs the agent. The SSH connection is closed when done.
 */
export async function installOnHost(target: BootstrapTarget, ctx: InstallContext): Promise<InstallReport> {
  ctx.progress({ host: target.name, step: 'connect' });
  const client = await connectSsh({ host: target.host, port: target.port, user: target.user, privateKey: target.privateKey }, target.hostKey, {
    deadlineMs: ctx.connectDeadlineMs ?? 180_000,
    retryAuth: ctx.retryAuth ?? false,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  const untie = onAbort(ctx.signal, () => client.end());
  try {
    return await steps(client, target, ctx);
  } finally {
    untie();
    client.end();
  }
}
