/** `gaxx certs list`: every certificate the CA issued, with its status. */
import { FleetCa, identityUri } from '../../certs/index.js';
import { JSON_FLAG, type Command } from '../command.js';
import { renderTable } from '../output.js';

/** superseded: a newer certificate was issued for the same identity (rotation, renewal). */
export type CertStatus = 'valid' | 'expired' | 'revoked' | 'superseded';

export const command: Command = {
  usage: 'gaxx certs list [--json]',
  description:
    "Lists the certificates issued by this installation's fleet CA: serial, identity,\nexpiry and status (valid; superseded by a newer certificate of the same identity; expired;\nor revoked).",
  flags: { json: JSON_FLAG },
  examples: ['gaxx certs list', 'gaxx certs list --json | jq \'.[] | select(.status == "valid")\''],
  async run({ config, out }) {
    const ca = FleetCa.open(config.paths.caDir);
    const revoked = ca.revoked();
    const now = Date.now();
    const records = ca.list();
    // The register is oldest first: the last record of an identity is its current certificate.
    const newest = new Map(records.map((r) => [identityUri(r.identity), r.serial]));
    const rows = records.map((r) => {
      const current = newest.get(identityUri(r.identity)) === r.serial;
      const status: CertStatus = revoked.has(r.serial) ? 'revoked' : Date.parse(r.notAfter) < now ? 'expired' : current ? 'valid' : 'superseded';
      return {
        serial: r.serial,
        identity: identityUri(r.identity),
        role: r.identity.role,
        subject: r.subject,
        hosts: r.hosts,
        notBefore: r.notBefore,
        notAfter: r.notAfter,
        status,
      };
    });
    out.result(rows, () =>
      rows.length === 0
        ? 'no certificates issued yet'
        : renderTable(rows, [
            { header: 'SERIAL', get: (r) => r.serial },
            { header: 'IDENTITY', get: (r) => r.subject },
            { header: 'NOT AFTER', get: (r) => r.notAfter },
            { header: 'STATUS', get: (r) => r.status },
          ]),
    );
    return 0;
  },
};
