/** `gaxx certs revoke SERIAL`: adds a serial to the CA-signed revocation list. */
import { join } from 'node:path';
import { FleetCa, REVOCATION_FILE, normalizeSerial } from '../../certs/index.js';
import { JSON_FLAG, type Command } from '../command.js';

export const command: Command = {
  usage: 'gaxx certs revoke SERIAL [--json]',
  description: [
    'Revokes a certificate this CA issued (serial as `gaxx certs list` shows it) and re-signs the',
    'revocation list (<config>/ca/revoked.json). Clients on this machine read that list: from the',
    'next command on, `gaxx exec`, `run`, `cp`, `status`, the scheduler daemon (on its next',
    'connection to the agent) and the dashboard refuse an agent presenting the serial',
    "(CERT_REVOKED, exit 8) and send it nothing. Agents load the list from their cert dir's",
    'revoked.json and refuse revoked client serials on every call: copy the new list there, or let',
    '`gaxx certs rotate` push it (certificates issued from now on carry it). A client elsewhere',
    '(a scheduler given --certs DIR) needs the new list in its cert dir too.',
  ].join('\n'),
  flags: { json: JSON_FLAG },
  positionals: { names: ['SERIAL'], min: 1 },
  examples: ['gaxx certs revoke 1A2B3C...', 'gaxx certs revoke 1a:2b:3c --json'],
  async run({ positionals, config, out }) {
    const serial = normalizeSerial(positionals[0] as string);
    const ca = FleetCa.open(config.paths.caDir);
    const already = ca.revoked().has(serial);
    ca.revoke(serial);
    const list = join(config.paths.caDir, REVOCATION_FILE);
    const result = { serial, alreadyRevoked: already, revocationList: list, revoked: [...ca.revoked()].sort() };
    out.result(result, () =>
      [
        `${already ? 'already revoked' : 'revoked'} ${serial}`,
        `signed revocation list: ${list} (${result.revoked.length} serial${result.revoked.length === 1 ? '' : 's'})`,
        "clients here refuse it from the next command on; agents load it from their cert dir's revoked.json: copy it there",
      ].join('\n'),
    );
    return 0;
  },
};
