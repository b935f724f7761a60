/**
 * `gaxx certs rotate --fleet F`: fresh certificates for every agent of a fleet, pushed over the
 * existing mTLS channel (PutFile into the agent's cert area, an operator-only RPC), then checked:
 * each agent must present the new serial on a new connection. Agents reload without restarting.
 */
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { assertName, FleetCa, loadCertDir, normalizeSerial, type CertBundle, type IssuedRecord } from '../../certs/index.js';
import { ERROR_CODES, exitCodeFor, GaxxError, isGaxxError, type ErrorCode } from '../../proto/index.js';
import { AgentClient, splitAddress } from '../../scheduler/index.js';
import { boolFlag, JSON_FLAG, stringFlag, stringsFlag, type Command } from '../command.js';
import { agentAddress } from './exec.js';

/** One agent's rotation outcome. */
export interface RotationResult {
  host: string;
  address: string;
  oldSerial: string;
  newSerial: string;
  ok: boolean;
  /** With --due-only: the agent did not report its renewal as due, nothing was changed. */
  skipped?: boolean;
  error?: string;
  code?: string;
}

/** The newest valid, unrevoked agent certificate of each host of `fleet`. */
export function fleetAgents(ca: FleetCa, fleet: string, now = Date.now()): IssuedRecord[] {
  const revoked = ca.revoked();
  const byHost = new Map<string, IssuedRecord>();
  for (const r of ca.list()) {
    if (r.identity.role !== 'agent' || r.identity.fleet !== fleet) continue;
    if (revoked.has(r.serial) || Date.parse(r.notAfter) < now) continue;
    byHost.set(r.identity.host, r);
  }
  return [...byHost.values()];
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

async function waitForSerial(address: string, creds: CertBundle, want: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = await presentedSerial(address, creds).catch(() => '');
    if (got === want) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Issues, pushes and verifies one agent's new certificate. */
async function rotateOne(
  ca: FleetCa,
  rec: IssuedRecord,
  address: string,
  creds: CertBundle,
  opts: { deadlineMs: number; connectTimeoutMs: number; verifyMs: number; dueOnly: boolean },
): Promise<RotationResult> {
  const id = rec.identity as Extract<IssuedRecord['identity'], { role: 'agent' }>;
  const result: RotationResult = { host: id.host, address, oldSerial: rec.serial, newSerial: '', ok: false };
  const client = AgentClient.connect({ address, expect: { fleet: id.fleet, host: id.host } }, creds, opts);
  try {
    const info = await client.info();
    result.oldSerial = info.certSerial;
    if (opts.dueOnly && !info.certRenewalDue) {
      result.skipped = true;
      result.ok = true;
      return result;
    }
    const fresh = await ca.issue({ identity: id, hosts: rec.hosts });
    result.newSerial = fresh.serial;
    // The key first: the agent keeps its current pair until cert and key match again.
    await client.putFile('key.pem', Buffer.from(fresh.keyPem), { area: 'FILE_AREA_CERTS', mode: 0o600 });
    await client.putFile('cert.pem', Buffer.from(fresh.certPem), { area: 'FILE_AREA_CERTS', mode: 0o644 });
    await client.putFile('revoked.json', Buffer.from(ca.revocationListText()), { area: 'FILE_AREA_CERTS', mode: 0o644 });
    result.ok = await waitForSerial(address, creds, fresh.serial, opts.verifyMs);
    if (!result.ok) result.error = `still presents another certificate after ${opts.verifyMs} ms`;
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
    if (isGaxxError(e)) result.code = e.code;
  } finally {
    client.close();
  }
  return result;
}

/** `--agent HOST=ADDR` overrides (where an agent listens elsewhere than its certificate's first name). */
function overrides(raw: string[], port: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of raw) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new GaxxError('USAGE', `--agent '${kv}' must be HOST=ADDR[:PORT]`);
    m.set(kv.slice(0, i), agentAddress(kv.slice(i + 1), port));
  }
  return m;
}

export const command: Command = {
  usage: 'gaxx certs rotate --fleet F [--due-only] [--agent HOST=ADDR ...] [--verify-timeout S] [--json]',
  description: [
    "Issues a fresh certificate for every agent of fleet F (the newest valid one per host in this CA's",
    'register), pushes key.pem, cert.pem and the current revoked.json into each agent\'s cert dir over',
    'mTLS (PutFile, operator only), and checks that each agent now presents the new serial. Agents',
    'reload without restarting; running tasks are not interrupted. Agents are dialled at the first',
    'name in their certificate and the configured agent port unless --agent HOST=ADDR says otherwise.',
    'With --due-only, only agents whose Info reports their renewal as due (about two thirds of the',
    "certificate's lifetime) are rotated: run it periodically (e.g. from cron) to renew a fleet.",
  ].join('\n'),
  flags: {
    fleet: { type: 'string', valueName: 'F', help: 'the fleet whose agents get new certificates' },
    agent: { type: 'string', valueName: 'HOST=ADDR', multiple: true, help: 'where agent HOST listens (ADDR[:PORT])' },
    'due-only': { type: 'boolean', help: 'rotate only agents that report their renewal as due' },
    'verify-timeout': { type: 'string', valueName: 'S', help: 'seconds to wait for each agent to present its new certificate (default 60)' },
    json: JSON_FLAG,
  },
  examples: ['gaxx certs rotate --fleet web', 'gaxx certs rotate --fleet web --due-only', 'gaxx certs rotate --fleet web --agent h1=10.0.0.5:8088 --json'],
  async run({ flags, config, out }) {
    const fleet = stringFlag(flags, 'fleet');
    if (!fleet) throw new GaxxError('USAGE', "--fleet F is required (see 'gaxx certs rotate --help')");
    assertName(fleet, 'fleet');
    const verifySeconds = Number(stringFlag(flags, 'verify-timeout') ?? 60);
    if (!(verifySeconds > 0)) throw new GaxxError('USAGE', '--verify-timeout must be a positive number of seconds');
    const where = overrides(stringsFlag(flags, 'agent'), config.agent.port);
    const ca = FleetCa.open(config.paths.caDir);
    const agents = fleetAgents(ca, fleet);
    if (agents.length === 0) throw new GaxxError('NOT_FOUND', `no valid agent certificate of fleet ${fleet} in this CA`);
    const creds = loadCertDir(config.paths.operatorCertDir);
    const opts = { deadlineMs: config.agent.deadlineMs, connectTimeoutMs: config.agent.connectTimeoutMs, verifyMs: verifySeconds * 1000, dueOnly: boolFlag(flags, 'due-only') };
    const results = await Promise.all(
      agents.map((rec) => {
        const host = (rec.identity as { host: string }).host;
        const address = where.get(host) ?? (rec.hosts[0] ? agentAddress(rec.hosts[0], config.agent.port) : '');
        if (!address) return Promise.resolve<RotationResult>({ host, address, oldSerial: rec.serial, newSerial: '', ok: false, error: 'no address: pass --agent HOST=ADDR', code: 'USAGE' });
        return rotateOne(ca, rec, address, creds, opts);
      }),
    );
    const line = (r: RotationResult) =>
      r.skipped ? `${r.host} (${r.address}): not due, kept ${r.oldSerial}` : r.ok ? `${r.host} (${r.address}): ${r.oldSerial} -> ${r.newSerial}` : `${r.host} (${r.address}): FAILED: ${r.error}`;
    out.result(results, () => results.map(line).join('\n'));
    const failed = results.find((r) => !r.ok);
    if (!failed) return 0;
    return exitCodeFor(failed.code && failed.code in ERROR_CODES ? (failed.code as ErrorCode) : 'UNAVAILABLE');
  },
};
