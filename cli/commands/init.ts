/** `gaxx init`: the CA, the SSH key pair and the operator certificate, created when absent. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CERT_FILE,
  FleetCa,
  assertName,
  identityFromSan,
  identityUri,
  loadCertDir,
  ownCertificateRevoked,
  parseCertificate,
  withCaRevocations,
  writeCertDir,
  type CertBundle,
} from '../../certs/index.js';
import { isGaxxError, makeDirs, withFileLock } from '../../proto/index.js';
import { JSON_FLAG, stringFlag, type Command } from '../command.js';
import type { GaxxConfig } from '../config.js';
import { ensureSshKeyPair } from '../ssh/keys.js';

/** The lock one `gaxx init` holds while it runs (in the config dir). */
const INIT_LOCK = '.init.lock';
/** How long a second init waits for the first: making a CA key takes a second or two on a loaded machine. */
const INIT_WAIT_MS = 60_000;

interface OperatorState {
  dir: string;
  created: boolean;
  renewed: boolean;
  identity: string;
  serial: string;
  notAfter: string;
}

/** The operator name in an (expired or revoked) operator certificate, if it names one. */
function expiredOperatorName(certFile: string): string | undefined {
  try {
    const id = identityFromSan(parseCertificate(readFileSync(certFile)).subjectAltName);
    return id.role === 'operator' ? id.name : undefined;
  } catch {
    return undefined;
  }
}

/** Loads the operator cert dir, issuing a certificate when there is none (or it expired, or the CA revoked it). */
async function ensureOperator(ca: FleetCa, config: GaxxConfig, name: string): Promise<OperatorState> {
  const dir = config.paths.operatorCertDir;
  let existing: CertBundle | undefined;
  let renewed = false;
  if (existsSync(join(dir, CERT_FILE))) {
    try {
      existing = loadCertDir(dir);
      // Revoked by the CA's own list (`gaxx certs revoke`: the dir's revoked.json is a copy from
      // when it was issued, which never learns of it): renewed as an expired one is.
      if (ownCertificateRevoked(withCaRevocations(existing, ca.dir))) {
        existing = undefined;
        renewed = true;
        name = expiredOperatorName(join(dir, CERT_FILE)) ?? name;
      }
    } catch (e) {
      // An expired or revoked operator certificate is renewed under the same name (the identity
      // agents and audit logs know); anything else (bad mode, wrong key) is reported.
      if (!isGaxxError(e, 'CERT_EXPIRED') && !isGaxxError(e, 'CERT_REVOKED')) throw e;
      renewed = true;
      name = expiredOperatorName(join(dir, CERT_FILE)) ?? name;
    }
  }
  if (existing) {
    const s = existing.summary;
    return { dir, created: false, renewed: false, identity: identityUri(s.identity), serial: s.serial, notAfter: s.notAfter.toISOString() };
  }
  const identity = { role: 'operator' as const, name };
  const made = await ca.issue({ identity });
  writeCertDir(dir, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem, revokedText: ca.revocationListText() });
  return { dir, created: !renewed, renewed, identity: identityUri(identity), serial: made.serial, notAfter: made.notAfter.toISOString() };
}

export const command: Command = {
  usage: 'gaxx init [--name NAME] [--json]',
  description: [
    'Creates, when absent, everything this installation needs under its config dir: the fleet CA',
    '(<config>/ca, key 0600), an Ed25519 SSH key pair (<config>/ssh/id_ed25519, 0600) and the',
    "operator's client certificate (<config>/operator, identity spiffe://gaxx/operator/<name>).",
    'Re-running it is harmless: nothing that exists is regenerated, and it says what it found;',
    'an operator certificate that expired or that the CA revoked (gaxx certs revoke) is renewed',
    'under the same name.',
    'A CA key or SSH key readable by group or others is refused (INSECURE_FILE_MODE).',
  ].join('\n'),
  flags: {
    name: { type: 'string', valueName: 'NAME', help: 'operator name for a new certificate (default: your user name)' },
    json: JSON_FLAG,
  },
  examples: ['gaxx init', 'gaxx init --name alice', 'GAXX_HOME=/tmp/lab gaxx init --json'],
  async run({ flags, config, out, signal }) {
    const name = stringFlag(flags, 'name') ?? config.operatorName;
    assertName(name, 'operator name');
    const { paths } = config;
    // GAXX_HOME (or --home, or the XDG dirs) names them.
    const hint = { elsewhere: 'point GAXX_HOME (--home) elsewhere' };
    makeDirs(paths.configDir, { mode: 0o700, hint });
    makeDirs(paths.stateDir, { mode: 0o700, hint });
    const progress = out.progress('gaxx init');
    // One init at a time: a second one waits, then finds what the first made (each step below
    // also holds its own file's lock, for the other commands that make or change them).
    const { ca, caCreated, ssh, operator } = await withFileLock(
      join(paths.configDir, INIT_LOCK),
      `gaxx init in ${paths.configDir}`,
      async () => {
        progress.update('fleet CA');
        const { ca, created } = await FleetCa.init(paths.caDir);
        progress.update('SSH key');
        const ssh = ensureSshKeyPair(paths.sshPrivateKey, paths.sshPublicKey, `gaxx-${name}`);
        progress.update('operator certificate');
        return { ca, caCreated: created, ssh, operator: await ensureOperator(ca, config, name) };
      },
      { waitMs: INIT_WAIT_MS, stop: signal },
    ).finally(() => progress.done());
    const fingerprint256 = parseCertificate(ca.certPem).fingerprint256;
    const result = {
      configDir: paths.configDir,
      stateDir: paths.stateDir,
      ca: { dir: paths.caDir, created: caCreated, fingerprint256 },
      ssh: { privateKey: ssh.privateKeyPath, publicKey: ssh.publicKeyPath, created: ssh.created, fingerprint: ssh.fingerprint },
      operator,
    };
    const said = (made: boolean) => (made ? 'created' : 'exists ');
    out.result(result, () =>
      [
        `CA        ${said(caCreated)}  ${paths.caDir}  (SHA256 ${fingerprint256})`,
        `SSH key   ${said(ssh.created)}  ${ssh.privateKeyPath}  (${ssh.fingerprint})`,
        `operator  ${operator.renewed ? 'renewed' : said(operator.created)}  ${operator.dir}  (${operator.identity}, serial ${operator.serial}, valid until ${operator.notAfter})`,
      ].join('\n'),
    );
    return 0;
  },
};
