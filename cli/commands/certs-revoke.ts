/** `gaxx certs revoke SERIAL`: adds a serial to the CA-signed revocation list. */
import { join } from 'node:path';
import { FleetCa, REVOCATION_FILE, normalizeSerial } from '../../certs/index.js';
import { JSON_FLAG, type Command } from '../command.js';

export const command: Command = {
  usage: 'gaxx certs revoke SERIAL [--json]',
  description: [
    'Revokes a certificate this CA issued (serial as `gaxx certs list` shows it) and re-signs the',
    "revocation list (<config>/ca/revoked.json). Agents load the list from their cert dir's",
    'revoked.json and refuse revoked serials on every call: copy the new list there (certificates',
    'issued from now on carry it).',
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
        "agents load it from their cert dir's revoked.json: copy it there",
      ].join('\n'),
    );
    return 0;
  },
};
