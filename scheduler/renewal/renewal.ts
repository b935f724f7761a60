/**
 * Agent certificate renewal, the one implementation behind `gaxx certs rotate` and the scheduler
 * daemon's renewal loop: ask the agent's Info, decide whether it is due, issue a fresh
 * certificate from the local CA, push key.pem, cert.pem and revoked.json into the agent's cert
 * area (PutFile, an operator-only RPC) and check that the agent presents the new serial on a new
 * connection. Then the certificates it superseded are revoked (a leaked old key would otherwise
 * pass as the agent until it expires) and the new list pushed. Agents reload without
 * restarting; running tasks are not interrupted.
 */
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { normalizeSerial, REVOCATION_FILE, type CertBundle, type FleetCa, type IssuedRecord } from '../../certs/index.js';
import { GaxxError, isGaxxError, type InfoResponse__Output } from '../../proto/index.js';
import { AgentClient } from '../client/agent-client.js';
import { splitAddress } from '../client/agent-identity.js';

/** One agent's rotation outcome (also `gaxx certs rotate --json`'s output, field for field). */
export interface RotationResult {
  host: string;
  address: string;
  oldSerial: string;
  newSerial: string;
  ok: boolean;
  /**
   * Serials revoked once the agent presented its new certificate: every earlier one of its
   * identity in the CA's register that was neither revoked nor expired (the one it served).
   */
  revoked?: string[];
  /** Whether the list revoking them reached the agent (clients on the controller refuse them either way). */
  revocationPushed?: boolean;
  /** The agent was not selected for renewal (e.g. not due): nothing was changed. */
  skipped?: boolean;
  error?: string;
  code?: string;
}

/** Why an agent is renewed. */
export type RenewalReason = 'due' | 'expiring';

/** The agent to rotate: where it listens and its newest certificate in the CA's register. */
export interface RotationTarget {
  fleet: string;
  host: string;
  address: string;
  /** Its hosts (IPs/DNS names) go into the new certificate; none: NOT_FOUND if it is selected. */
  record: IssuedRecord | undefined;
}

export interface RotateOptions {
  /** Deadline of unary calls. */
  deadlineMs?: number;
  connectTimeoutMs?: number;
  /** The agents' bearer token, when they require one. */
  token?: string | undefined;
  /** How long to wait for the agent to present its new certificate. */
  verifyMs: number;
  /** Whether to renew, from the agent's Info; default: always. False leaves the agent alone (`skipped`). */
  select?: (info: InfoResponse__Output) => boolean;
  /** Credentials for the Info call; default: `creds`. The push always uses `creds` (operator role). */
  infoCreds?: CertBundle;
  /** Ends the wait for the new serial early (daemon shutdown). */
  signal?: AbortSignal;
  /**
   * Refuse (CERT_REVOKED) an agent whose presented certificate this CA has revoked: an
   * unattended renewal must not hand a fresh key to whoever holds a revoked one. Checked here on
   * a connection of its own; clients whose credentials carry the CA's list
   * (withCaRevocations, as the CLI's and the daemon's do) refuse such an agent at the handshake
   * anyway.
   */
  refuseRevoked?: boolean;
}

/** The newest valid, unrevoked agent certificate of each host of `fleet` in the CA's register. */
export function issuedAgentCerts(ca: FleetCa, fleet: string, now = Date.now()): IssuedRecord[] {
  const revoked = ca.revoked();
  const byHost = new Map<string, IssuedRecord>();
  for (const r of ca.list()) {
    if (r.identity.role !== 'agent' || r.identity.fleet !== fleet) continue;
    if (revoked.has(r.serial) || Date.parse(r.notAfter) < now) continue;
    byHost.set(r.identity.host, r);
  }
  return [...byHost.values()];
}

/**
 * Whether an agent's Info calls for a renewal: it reports it as due (about two thirds of its
 * certificate's lifetime, jittered per host), or its certificate ends within `marginMs` (an
 * agent with a skewed clock, or one that missed its due time, is renewed before it expires).
 */
export function renewalReason(info: InfoResponse__Output, marginMs = 0, now = Date.now()): RenewalReason | undefined {
  if (info.certRenewalDue) return 'due';
  const notAfter = Number(info.certNotAfterUnixMs);
  if (marginMs > 0 && notAfter > 0 && notAfter - now <= marginMs) return 'expiring';
  return undefined;
}

/**
 * The certificates of agent `fleet`/`host` that `current` supersedes: those issued before it
 * (the register is in issue order), neither revoked nor expired. From the register, never from
 * what an agent says, so an agent cannot get another's certificate revoked.
 */
export function supersededAgentSerials(ca: FleetCa, fleet: string, host: string, current: string, now = Date.now()): string[] {
  const records = ca.list();
  const at = records.findIndex((r) => r.serial === current);
  if (at < 0) return [];
  const revoked = ca.revoked();
  return records
    .slice(0, at)
    .filter((r) => r.identity.role === 'agent' && r.identity.fleet === fleet && r.identity.host === host)
    .filter((r) => !revoked.has(r.serial) && Date.parse(r.notAfter) >= now)
    .map((r) => r.serial);
}

/**
 * Pushes the CA's revocation list into an agent's cert dir; resolves to the text pushed. An agent
 * refuses a list older than the newest it has seen (REVOCATION_ROLLBACK), and commands that revoke
 * at once (each revoke, rotation and daemon renewal signs a list and pushes it) may have a newer
 * one reach it first: the CA's list, which holds every serial of the lists before it, is then
 * read again and pushed in its place, while the CA has a newer one than the one refused (at most
 * MAX_LIST_PUSHES pushes in all).
 */
export async function pushRevocationList(client: AgentClient, ca: FleetCa): Promise<string> {
  let text = ca.revocationListText();
  for (let tries = 1; ; tries++) {
    try {
      await client.putFile(REVOCATION_FILE, Buffer.from(text), { area: 'FILE_AREA_CERTS', mode: 0o644 });
      return text;
    } catch (e) {
      const newest = isGaxxError(e, 'REVOCATION_ROLLBACK') && tries < MAX_LIST_PUSHES ? ca.revocationListText() : text;
      if (newest === text) throw e;
      text = newest;
    }
  }
}

/** The most pushes pushRevocationList makes, the first included. */
const MAX_LIST_PUSHES = 5;

/** Revokes what `fresh` superseded and pushes the new list; the outcome goes into `result`. */
async function revokeSuperseded(ca: FleetCa, target: RotationTarget, fresh: string, pusher: AgentClient, result: RotationResult): Promise<void> {
  const old = supersededAgentSerials(ca, target.fleet, target.host, fresh);
  result.revoked = old;
  if (old.length === 0) return;
  try {
    ca.revokeAll(old);
  } catch (e) {
    // The agent serves its new certificate, but the old ones still pass: not a success.
    result.ok = false;
    result.error = `the agent serves ${fresh}, but revoking ${old.join(', ')} failed: ${(e as Error).message}`;
    if (isGaxxError(e)) result.code = e.code;
    return;
  }
  try {
    await pushRevocationList(pusher, ca);
    result.revocationPushed = true;
  } catch {
    // The rotation itself succeeded; the agent gets the list with its next push.
    result.revocationPushed = false;
  }
}

/** The serial of the certificate the agent at `address` presents to a new TLS connection. */
function presentedSerial(address: string, creds: CertBundle): Promise<string> {
  const { host, port } = splitAddress(address);
  return new Promise((resolve, reject) => {
    const opts = { host, port, ca: creds.caPem, cert: creds.certPem, key: creds.keyPem, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined };
    const s = tlsConnect(opts as ConnectionOptions, () => {
      const serial = s.getPeerX509Certificate()?.serialNumber;
      s.destroy();
      if (serial) resolve(normalizeSerial(serial));
      else reject(new GaxxError('UNAVAILABLE', `${address} presented no certificate`));
    });
    s.once('error', (e) => reject(new GaxxError('UNAVAILABLE', `cannot reach ${address}: ${e.message}`, { cause: e })));
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
  });
}

/** Polls new connections until the agent presents `want` (bounded by `timeoutMs` or `signal`). */
async function waitForSerial(address: string, creds: CertBundle, want: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = await presentedSerial(address, creds).catch(() => '');
    if (got === want) return true;
    if (Date.now() > end || signal?.aborted) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** CERT_REVOKED when the certificate the agent presents (on the wire, not as Info says) is revoked. */
async function assertNotRevoked(ca: FleetCa, address: string, creds: CertBundle): Promise<void> {
  const serial = await presentedSerial(address, creds);
  if (ca.revoked().has(serial)) throw new GaxxError('CERT_REVOKED', `${address} presents revoked certificate ${serial}; not renewed`);
}

/**
 * Renews one agent's certificate when `opts.select` (default: always) says so: issues it from
 * `ca`, pushes it with `creds` (an operator certificate: the cert area is operator-only) and
 * waits until the agent presents it. Never throws: failures are in the result.
 */
export async function rotateAgent(ca: FleetCa, target: RotationTarget, creds: CertBundle, opts: RotateOptions): Promise<RotationResult> {
  const { fleet, host, address, record } = target;
  const result: RotationResult = { host, address, oldSerial: record?.serial ?? '', newSerial: '', ok: false };
  const clientOpts = { deadlineMs: opts.deadlineMs, connectTimeoutMs: opts.connectTimeoutMs, token: opts.token };
  const pusher = AgentClient.connect({ address, expect: { fleet, host } }, creds, clientOpts);
  const asker = opts.infoCreds ? AgentClient.connect({ address, expect: { fleet, host } }, opts.infoCreds, clientOpts) : pusher;
  try {
    const info = await asker.info();
    result.oldSerial = info.certSerial;
    if (opts.select && !opts.select(info)) {
      result.skipped = true;
      result.ok = true;
      return result;
    }
    if (opts.refuseRevoked) await assertNotRevoked(ca, address, creds);
    if (!record) throw new GaxxError('NOT_FOUND', `no valid certificate of agent ${fleet}/${host} in this CA's register`);
    // The agent makes the new key; only its request and the signed certificate travel.
    const fresh = await ca.issueForCsr(await pusher.createCsr(), { identity: { role: 'agent', fleet, host }, hosts: record.hosts });
    result.newSerial = fresh.serial;
    await pusher.putFile('cert.pem', Buffer.from(fresh.certPem), { area: 'FILE_AREA_CERTS', mode: 0o644 });
    await pushRevocationList(pusher, ca);
    result.ok = await waitForSerial(address, creds, fresh.serial, opts.verifyMs, opts.signal);
    if (!result.ok) result.error = `still presents another certificate after ${opts.verifyMs} ms`;
    else await revokeSuperseded(ca, target, fresh.serial, pusher, result);
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
    if (isGaxxError(e)) result.code = e.code;
  } finally {
    pusher.close();
    if (asker !== pusher) asker.close();
  }
  return result;
}
