/** The operator's Ed25519 SSH key pair (OpenSSH format), used to reach fleet hosts. */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import { readPrivateFile, writeFileAtomic } from '../../certs/index.js';
import { GaxxError, makeDirs, withFileLockSync } from '../../proto/index.js';
import { generateEd25519 } from './ed25519.js';

export interface SshKeyPair {
  privateKeyPath: string;
  publicKeyPath: string;
  /** `ssh-ed25519 AAAA... comment` */
  publicKey: string;
  /** OpenSSH style `SHA256:<base64>` fingerprint of the public key. */
  fingerprint: string;
  created: boolean;
}

/**
 * Returns the key pair at `privateKeyPath` (+ `.pub`), generating it when absent (holding the
 * lock `<privateKeyPath>.lock`: a second gaxx making one at the same time keeps the first's). An
 * existing private key readable by group or others is refused (INSECURE_FILE_MODE), not repaired.
 */
export function ensureSshKeyPair(privateKeyPath: string, publicKeyPath: string, comment: string): SshKeyPair {
  if (existsSync(privateKeyPath)) return existingPair(privateKeyPath, publicKeyPath, comment);
  const pair = generateEd25519(comment);
  makeDirs(dirname(privateKeyPath), { mode: 0o700 });
  return withFileLockSync(`${privateKeyPath}.lock`, `the SSH key ${privateKeyPath}`, () => {
    if (existsSync(privateKeyPath)) return existingPair(privateKeyPath, publicKeyPath, comment);
    writeFileAtomic(privateKeyPath, pair.privateKey, 0o600);
    writeFileAtomic(publicKeyPath, `${pair.publicKey}\n`, 0o644);
    const blob = Buffer.from(pair.publicKey.split(/\s+/)[1] ?? '', 'base64');
    return { privateKeyPath, publicKeyPath, publicKey: pair.publicKey, fingerprint: fingerprintOf(blob), created: true };
  });
}

/** The key pair whose private key is at `privateKeyPath`, its missing .pub restored. */
function existingPair(privateKeyPath: string, publicKeyPath: string, comment: string): SshKeyPair {
  const parsed = ssh2.utils.parseKey(readPrivateFile(privateKeyPath, 'SSH private key'));
  if (parsed instanceof Error || Array.isArray(parsed)) {
    throw new GaxxError('FAILED_PRECONDITION', `${privateKeyPath} is not a readable unencrypted SSH private key`, { cause: parsed });
  }
  const blob = parsed.getPublicSSH();
  const publicKey = `${parsed.type} ${blob.toString('base64')} ${comment}`;
  // Restore a missing .pub from the private key rather than failing.
  if (!existsSync(publicKeyPath)) writeFileAtomic(publicKeyPath, `${publicKey}\n`, 0o644);
  return { privateKeyPath, publicKeyPath, publicKey, fingerprint: fingerprintOf(blob), created: false };
}

/** `SHA256:<unpadded base64>` of an SSH public key blob, as `ssh-keygen -l` prints it. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}
