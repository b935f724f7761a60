/**
 * `gaxx certs rotate --fleet F`: fresh certificates for every agent of a fleet, pushed over the
 * existing mTLS channel (PutFile into the agent's cert area, an operator-only RPC), then checked:
 * each agent must present the new serial on a new connection. Agents reload without restarting.
 */
import { assertName, FleetCa } from '../../certs/index.js';
import { ERROR_CODES, exitCodeFor, GaxxError, type ErrorCode, type InfoResponse__Output } from '../../proto/index.js';
import { issuedAgentCerts, renewalReason, rotateAgent, type RotationResult } from '../../scheduler/index.js';
import { boolFlag, durationFlag, JSON_FLAG, stringFlag, stringsFlag, type Command } from '../command.js';
import { agentClientOptions } from '../config.js';
import { operatorCredentials } from '../operator-credentials.js';
import { lockFleet } from '../fleet/fleet-lock.js';
import { readFleet } from '../state.js';
import { agentAddress } from './exec.js';

/** `--agent HOST=ADDR` overrides (where an agent listens elsewhere than its certificate's first name). */
function overrides(raw: string[], port: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of raw) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new GaxxError('USAGE', `--agent '${kv}' must be HOST=ADDR[:PORT]`);
    m.set(kv.slice(0, i), agentAddress(kv.slice(i + 1), port, 'certs rotate'));
  }
  return m;
}

/** Host name -> agent address of the fleet's ready hosts, from its state (empty without one). */
function stateAddresses(fleetsDir: string, fleet: string): Map<string, string> {
  let state;
  try {
    state = readFleet(fleetsDir, fleet);
  } catch {
    // A fleet name the state cannot hold, or damaged state: fall back to the certificates.
    return new Map();
  }
  return new Map((state?.hosts ?? []).flatMap((h) => (h.agent ? [[h.name, h.agent] as const] : [])));
}

export const command: Command = {
  usage: 'gaxx certs rotate --fleet F [--due-only] [--agent HOST=ADDR ...] [--verify-timeout D] [--json]',
  description: [
    "Issues a fresh certificate for every agent of fleet F (the newest valid one per host in this CA's",
    'register): each agent makes its new key and returns a certificate request (CreateCsr; no private',
    'key travels), the signed cert.pem and the current revoked.json are pushed into its cert dir over',
    'mTLS (PutFile, operator only, staged and verified there), and each agent must then present the new',
    'serial. Once it does, the certificates its new one supersedes (the one it served, and any earlier one',
    'of the same host not yet revoked or expired) are revoked in <config>/ca/revoked.json and the new list',
    'pushed to it: an old key is refused by clients and agents from then on (--json: `revoked`).',
    'Agents reload without restarting; running tasks are not interrupted. Agents are dialled where the fleet',
    'state (gaxx spawn) saw them answer, else at the first name in their certificate and the',
    'configured agent port; --agent HOST=ADDR overrides both.',
    'A host of the fleet state without a valid certificate (revoked, expired) cannot be rotated: it',
    'is listed as failed (FAILED_PRECONDITION, exit 6); replace it.',
    'With --due-only, only agents whose Info reports their renewal as due (about two thirds of the',
    "certificate's lifetime) are rotated: run it periodically (e.g. from cron) to renew a fleet.",
    'It holds the fleet while it runs, as gaxx spawn and delete do: while another of them, another',
    "rotation or a scheduler daemon's renewal of fleet F runs, it is refused at once naming it",
    '(FAILED_PRECONDITION, exit 6), and the daemon renews a fleet that a rotation holds in a later round.',
  ].join('\n'),
  flags: {
    fleet: { type: 'string', valueName: 'F', help: 'the fleet whose agents get new certificates' },
    agent: { type: 'string', valueName: 'HOST=ADDR', multiple: true, help: 'where agent HOST listens (ADDR[:PORT])' },
    'due-only': { type: 'boolean', help: 'rotate only agents that report their renewal as due' },
    'verify-timeout': { type: 'string', valueName: 'D', help: 'how long to wait for each agent to present its new certificate (default 60s)' },
    json: JSON_FLAG,
  },
  examples: ['gaxx certs rotate --fleet web', 'gaxx certs rotate --fleet web --due-only', 'gaxx certs rotate --fleet web --agent h1=10.0.0.5:8088 --json'],
  async run({ flags, config, out }) {
    const fleet = stringFlag(flags, 'fleet');
    if (!fleet) throw new GaxxError('USAGE', "--fleet F is required (see 'gaxx certs rotate --help')");
    assertName(fleet, 'fleet');
    const verifyMs = durationFlag(flags, 'verify-timeout', 'certs rotate') ?? 60_000;
    const given = overrides(stringsFlag(flags, 'agent'), config.agent.port);
    const ca = FleetCa.open(config.paths.caDir);
    const agents = issuedAgentCerts(ca, fleet);
    if (agents.length === 0) throw new GaxxError('NOT_FOUND', `no valid agent certificate of fleet ${fleet} in this CA`);
    // A mistyped HOST would otherwise be ignored and every agent dialled at its usual address.
    const hosts = new Set(agents.map((rec) => (rec.identity as { host: string }).host));
    for (const host of given.keys())
      if (!hosts.has(host))
        throw new GaxxError(
          'NOT_FOUND',
          `--agent ${host}=...: fleet ${fleet} has no host ${host} (its hosts: ${[...hosts].sort().join(', ')}); nothing rotated`,
        );
    // Where the fleet state saw each agent answer, unless --agent says otherwise.
    const where = new Map([...stateAddresses(config.paths.fleetsDir, fleet), ...given]);
    const creds = operatorCredentials(config.paths.operatorCertDir, config.paths.caDir);
    const opts = {
      ...agentClientOptions(config),
      verifyMs,
      // --due-only: what the agent's Info reports (no expiry margin, unlike the daemon's loop).
      ...(boolFlag(flags, 'due-only') ? { select: (info: InfoResponse__Output) => renewalReason(info) !== undefined } : {}),
    };
    // Hosts the fleet state has that hold no valid certificate of this CA (revoked or expired):
    // no client talks to them, and nothing here can give them one. Said, never passed over.
    const stale: RotationResult[] = [...where.keys()]
      .filter((host) => !hosts.has(host))
      .sort()
      .map((host) => ({
        host,
        address: where.get(host) ?? '',
        oldSerial: '',
        newSerial: '',
        ok: false,
        error: 'no valid agent certificate of this host in this CA (revoked or expired): clients refuse it; replace the host (gaxx delete, then gaxx spawn)',
        code: 'FAILED_PRECONDITION',
      }));
    // One rotation of a fleet at a time, and none beside its spawn, delete or a daemon's renewal (fleet-lock.ts).
    const lock = lockFleet(config.paths.fleetsDir, fleet, 'certs rotate');
    const rotated = await Promise.all(
      agents.map((rec) => {
        const host = (rec.identity as { host: string }).host;
        const address = where.get(host) ?? (rec.hosts[0] ? agentAddress(rec.hosts[0], config.agent.port, 'certs rotate') : '');
        if (!address)
          return Promise.resolve<RotationResult>({
            host,
            address,
            oldSerial: rec.serial,
            newSerial: '',
            ok: false,
            error: 'no address: pass --agent HOST=ADDR',
            code: 'USAGE',
          });
        return rotateAgent(ca, { fleet, host, address, record: rec }, creds, opts);
      }),
    ).finally(() => lock.release());
    const results = [...rotated, ...stale];
    const revokedNote = (r: RotationResult) =>
      r.revoked?.length
        ? `; revoked ${r.revoked.join(', ')}${r.revocationPushed === false ? ' (the new list did not reach the agent: it gets it with its next push)' : ''}`
        : '';
    const line = (r: RotationResult) =>
      r.skipped
        ? `${r.host} (${r.address}): not due, kept ${r.oldSerial}`
        : r.ok
          ? `${r.host} (${r.address}): ${r.oldSerial} -> ${r.newSerial}${revokedNote(r)}`
          : `${r.host} (${r.address}): FAILED: ${r.error}`;
    out.result(results, () => results.map(line).join('\n'));
    const failed = results.find((r) => !r.ok);
    if (!failed) return 0;
    return exitCodeFor(failed.code && failed.code in ERROR_CODES ? (failed.code as ErrorCode) : 'UNAVAILABLE');
  },
};
