/**
 * `gaxx certs revoke SERIAL`: adds a serial to the CA-signed revocation list and pushes the new
 * list to the agents of every fleet this installation knows, so that they refuse the serial at
 * once (agents reload their cert dir's revoked.json as it changes).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CERT_FILE, FleetCa, REVOCATION_FILE, normalizeSerial, parseCertificate, type CertBundle } from '../../certs/index.js';
import { compareText, exitCodeFor, isGaxxError, printable } from '../../proto/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { pushRevocationList } from '../../scheduler/index.js';
import { boolFlag, JSON_FLAG, type Command } from '../command.js';
import { agentClientOptions, type GaxxConfig } from '../config.js';
import { operatorCreds, parallelMap } from '../fleet/targets.js';
import type { Output } from '../output.js';
import { monitorCertDir, schedulerCertDir } from '../scheduler-credentials.js';
import { listFleets } from '../state.js';

/** Which of gaxx's local certificates (its own, re-issued at their next use) `serial` is, if one. */
function localCertificate(config: GaxxConfig, serial: string): { role: string; dir: string } | undefined {
  for (const [role, dir] of [
    ['scheduler', schedulerCertDir(config.paths)],
    ['monitor', monitorCertDir(config.paths)],
  ] as const) {
    try {
      if (normalizeSerial(parseCertificate(readFileSync(join(dir, CERT_FILE))).serialNumber) === serial) return { role, dir };
    } catch {
      // None there, or not a certificate: not this one.
    }
  }
  return undefined;
}

/** Agents the new list is pushed to at once. */
const PUSH_PARALLEL = 8;

/** One agent's copy of the new list: pushed, or why not. */
export interface ListPush {
  fleet: string;
  host: string;
  address: string;
  ok: boolean;
  /** Not pushed because the agent's own certificate is revoked: clients send it nothing (replace or delete the host). */
  skipped?: boolean;
  code?: string;
  error?: string;
}

/**
 * Pushes `list` into the cert area of every ready host of every fleet with a state here, with
 * `pusher`: the operator's bundle as it was before this revocation (or why there is none).
 */
async function pushList(config: GaxxConfig, out: Output, ca: FleetCa, pusher: () => CertBundle): Promise<ListPush[]> {
  const targets = listFleets(config.paths.fleetsDir).flatMap((f) =>
    f.hosts.flatMap((h) => (h.agent ? [{ fleet: f.fleet, host: h.name, address: h.agent }] : [])),
  );
  if (targets.length === 0) return [];
  const pushes = await parallelMap(out, 'gaxx certs revoke: pushing the list', targets, PUSH_PARALLEL, async (t): Promise<ListPush> => {
    let client: AgentClient | undefined;
    try {
      client = AgentClient.connect({ address: t.address, expect: { fleet: t.fleet, host: t.host } }, pusher(), agentClientOptions(config));
      await pushRevocationList(client, ca);
      return { ...t, ok: true };
    } catch (e) {
      return {
        ...t,
        ok: false,
        ...(isGaxxError(e, 'CERT_REVOKED') ? { skipped: true } : {}),
        ...(isGaxxError(e) ? { code: e.code } : {}),
        error: printable((e as Error).message ?? String(e)),
      };
    } finally {
      client?.close();
    }
  });
  return pushes.sort((a, b) => compareText(a.fleet, b.fleet) || compareText(a.host, b.host));
}

export const command: Command = {
  usage: 'gaxx certs revoke SERIAL [--no-push] [--json]',
  description: [
    'Revokes a certificate this CA issued (serial as `gaxx certs list` shows it), re-signs the',
    'revocation list (<config>/ca/revoked.json) and pushes it into the cert dir of every agent of',
    'every fleet gaxx spawn recorded here (PutFile, operator only): each reloads it and refuses the',
    'serial on its next call, open connections included. Clients on this machine read the list too:',
    'from the next command on, `gaxx exec`, `run`, `cp`, `status`, the scheduler daemon (on its next',
    'connection to the agent) and the dashboard refuse an agent presenting the serial (CERT_REVOKED,',
    'exit 8) and send it nothing. An agent that did not get the list is listed and the command',
    'exits 12: run it again once the agent is back (it pushes again), or copy the list there; an',
    'agent whose own certificate is revoked is listed as skipped (no client talks to it: replace it).',
    'With --no-push nothing is sent. Agents outside every',
    'recorded fleet (a cert dir made with `gaxx certs issue --role agent`) need the list copied, and',
    'so does a client elsewhere (a scheduler given --certs DIR); certificates issued from now on carry it.',
    "Revoking one of gaxx's own client certificates: the local scheduler or monitor certificate",
    '(<state>/scheduler/certs, <state>/monitor/certs) is issued anew at its next use (the next run,',
    "a running daemon's or dashboard's next call), with a note; a revoked operator certificate is",
    'refused by every command until `gaxx init` issues a new one under the same name.',
  ].join('\n'),
  flags: {
    'no-push': { type: 'boolean', help: 'only re-sign the list; send it to no agent' },
    json: JSON_FLAG,
  },
  positionals: { names: ['SERIAL'], min: 1 },
  examples: ['gaxx certs revoke 1A2B3C...', 'gaxx certs revoke 1a:2b:3c --json', 'gaxx certs revoke 1A2B3C... --no-push'],
  async run({ flags, positionals, config, out }) {
    const serial = normalizeSerial(positionals[0] as string);
    const ca = FleetCa.open(config.paths.caDir);
    const already = ca.revoked().has(serial);
    // Read before the revocation: an operator revoking their own certificate still pushes the
    // list with it (agents without the list yet accept it), and is told to run `gaxx init`.
    let operator: CertBundle | Error;
    try {
      operator = operatorCreds(config);
    } catch (e) {
      operator = e as Error;
    }
    const pusher = (): CertBundle => {
      if (operator instanceof Error) throw operator;
      return operator;
    };
    ca.revoke(serial);
    const list = join(config.paths.caDir, REVOCATION_FILE);
    const pushed = boolFlag(flags, 'no-push') ? undefined : await pushList(config, out, ca, pusher);
    const ownRevoked = !(operator instanceof Error) && operator.summary.serial === serial;
    const local = localCertificate(config, serial);
    // An agent whose own certificate is revoked can never take the list: not a failure to retry.
    const skipped = (pushed ?? []).filter((p) => p.skipped);
    const failed = (pushed ?? []).filter((p) => !p.ok && !p.skipped);
    const result = { serial, alreadyRevoked: already, revocationList: list, revoked: [...ca.revoked()].sort(), ...(pushed ? { pushed } : {}) };
    out.result(result, () =>
      [
        `${already ? 'already revoked' : 'revoked'} ${serial}`,
        `signed revocation list: ${list} (${result.revoked.length} serial${result.revoked.length === 1 ? '' : 's'})`,
        pushed === undefined
          ? "not pushed (--no-push): agents load it from their cert dir's revoked.json: copy it there"
          : `pushed to ${pushed.length - failed.length - skipped.length} of ${pushed.length} agent${pushed.length === 1 ? '' : 's'} of the recorded fleets`,
        ...skipped.map(
          (p) =>
            `  skipped ${p.fleet}/${p.host} (${p.address}): its own certificate is revoked; replace the host (gaxx delete, or a new agent certificate by hand)`,
        ),
        ...failed.map((p) => `  NOT pushed to ${p.fleet}/${p.host} (${p.address}): ${p.error ?? p.code ?? 'failed'}`),
        ...(failed.length > 0 ? [`run \`gaxx certs revoke ${serial}\` again once they answer, or copy ${list} there`] : []),
        ...(ownRevoked ? [`this is your operator certificate (${config.paths.operatorCertDir}): run 'gaxx init' to issue a new one`] : []),
        ...(local ? [`this is gaxx's local ${local.role} certificate (${local.dir}): a new one is issued at its next use`] : []),
      ].join('\n'),
    );
    return failed.length > 0 ? exitCodeFor('UNAVAILABLE') : 0;
  },
};
