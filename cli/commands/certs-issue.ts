/** `gaxx certs issue`: a certificate for one identity, written as a cert dir. */
import { readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { FleetCa, ROLES, identityUri, writeCertDir, type Identity, type Role } from '../../certs/index.js';
import { fileAccessError, GaxxError, isHostName } from '../../proto/index.js';
import { boolFlag, intFlag, JSON_FLAG, stringFlag, stringsFlag, type Command, type FlagValues } from '../command.js';

const MAX_DAYS = 3650;

function usage(message: string): GaxxError {
  return new GaxxError('USAGE', `${message} (see 'gaxx certs issue --help')`);
}

/**
 * What the --out dir holds (nothing when it is new); USAGE when it names something else than a
 * directory, FILE_ACCESS when it cannot be read.
 */
function outEntries(dir: string): string[] {
  try {
    if (!statSync(dir).isDirectory()) throw usage(`--out ${dir} is not a directory: --out names the directory (new or empty) to write the cert files to`);
    return readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw fileAccessError(e) ?? e;
  }
}

/** The identity, hosts and lifetime the flags ask for; USAGE when they do not fit the role. */
function requestFrom(flags: FlagValues): { identity: Identity; hosts: string[]; days: number | undefined; out: string } {
  const role = stringFlag(flags, 'role');
  const name = stringFlag(flags, 'name');
  const fleet = stringFlag(flags, 'fleet');
  const hosts = stringsFlag(flags, 'host');
  const out = stringFlag(flags, 'out');
  if (!role || !(ROLES as readonly string[]).includes(role)) throw usage(`--role must be one of ${ROLES.join(', ')}`);
  if (!name) throw usage('--name is required');
  if (!out) throw usage('--out DIR is required');
  const badHost = hosts.find((h) => !isHostName(h));
  if (badHost !== undefined) throw usage(`--host '${badHost}' is not an IP address or a DNS name`);
  const days = intFlag(flags, 'days', 'certs issue', 1, MAX_DAYS);
  let identity: Identity;
  if ((role as Role) === 'agent') {
    if (!fleet) throw usage('role agent needs --fleet FLEET (and --name HOST)');
    identity = { role: 'agent', fleet, host: name };
  } else {
    if (fleet) throw usage(`--fleet applies to role agent only`);
    if (hosts.length > 0) throw usage(`--host applies to role agent only`);
    identity = { role: role as Exclude<Role, 'agent'>, name };
  }
  return { identity, hosts, days, out: resolve(out) };
}

export const command: Command = {
  usage: 'gaxx certs issue --role R --name N [--fleet F] [--host H ...] [--days N] --out DIR [--force] [--json]',
  description: [
    "Issues a certificate signed by this installation's fleet CA and writes it as a cert dir:",
    'cert.pem, key.pem (0600), ca.pem and the current signed revoked.json. Prints its serial and',
    'expiry. Role agent names a host of a fleet (spiffe://gaxx/agent/<fleet>/<name>) and takes',
    "the host's IP addresses and DNS names with --host; roles operator, scheduler and monitor",
    'name a client (spiffe://gaxx/<role>/<name>).',
  ].join('\n'),
  flags: {
    role: { type: 'string', valueName: 'R', values: ROLES, help: `role: ${ROLES.join(', ')}` },
    name: { type: 'string', valueName: 'N', help: 'host name (role agent) or client name' },
    fleet: { type: 'string', valueName: 'F', help: 'fleet name (role agent only, required there)' },
    host: { type: 'string', valueName: 'H', multiple: true, help: 'IP address or DNS name the agent answers on (role agent)' },
    days: { type: 'string', valueName: 'N', help: `lifetime in days, 1 to ${MAX_DAYS} (default 30)` },
    out: { type: 'string', valueName: 'DIR', help: 'directory to write cert.pem, key.pem, ca.pem, revoked.json (must be empty or new)' },
    force: { type: 'boolean', help: 'write into a non-empty --out DIR, replacing its cert files' },
    json: JSON_FLAG,
  },
  examples: [
    'gaxx certs issue --role agent --fleet web --name h1 --host 10.0.0.5 --host h1.internal --out ./h1-certs',
    'gaxx certs issue --role scheduler --name sched1 --out /etc/gaxx/scheduler',
    'gaxx certs issue --role monitor --name prom --days 7 --out ./prom --json',
  ],
  async run({ flags, config, out }) {
    const req = requestFrom(flags);
    // Never mix a new key into a dir holding something else (another host's certs, say).
    if (outEntries(req.out).length > 0 && !boolFlag(flags, 'force')) {
      throw new GaxxError('ALREADY_EXISTS', `${req.out} is not empty; choose an empty --out DIR, or --force to overwrite its cert files`);
    }
    const ca = FleetCa.open(config.paths.caDir);
    const made = await ca.issue({
      identity: req.identity,
      hosts: req.hosts,
      ...(req.days === undefined ? {} : { validityMs: req.days * 24 * 3600 * 1000 }),
    });
    if (req.identity.role === 'agent' && req.hosts.length === 0) {
      out.note('gaxx: warning: no --host given; clients check the address they dial against the certificate, so none can reach this agent');
    }
    writeCertDir(req.out, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem, revokedText: ca.revocationListText() });
    const result = {
      serial: made.serial,
      identity: identityUri(req.identity),
      hosts: req.hosts,
      notBefore: made.notBefore.toISOString(),
      notAfter: made.notAfter.toISOString(),
      dir: req.out,
    };
    out.result(result, () => `issued ${result.identity} serial ${made.serial}, valid until ${result.notAfter}, in ${req.out}`);
    return 0;
  },
};
