/** `gaxx certs list`: every certificate the CA issued, with its status. */
import { FleetCa, identityUri } from '../../certs/index.js';
import { JSON_FLAG, type Command } from '../command.js';
import { renderTable } from '../output.js';

export type CertStatus = 'valid' | 'expired' | 'revoked';

export const command: Command = {
  usage: 'gaxx certs list [--json]',
  description: 'Lists the certificates issued by this installation\'s fleet CA: serial, identity,\nexpiry and status (valid, expired or revoked).',
  flags: { json: JSON_FLAG },
  examples: ['gaxx certs list', "gaxx certs list --json | jq '.[] | select(.status == \"valid\")'"],
  async run({ config, out }) {
    const ca = FleetCa.open(config.paths.caDir);
    const revoked = ca.revoked();
    const now = Date.now();
    const rows = ca.list().map((r) => {
      const status: CertStatus = revoked.has(r.serial) ? 'revoked' : Date.parse(r.notAfter) < now ? 'expired' : 'valid';
      return { serial: r.serial, identity: identityUri(r.identity), role: r.identity.role, subject: r.subject, hosts: r.hosts, notBefore: r.notBefore, notAfter: r.notAfter, status };
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
