/**
 * cloud-init user data for a fresh VM: the user gx (no sudo, no password) with the operator's
 * key, the host key gaxx generated locally and pins (so even the first SSH connection is
 * verified), sshd limited to keys at once, and optionally a poweroff safety net.
 *
 * Root keeps key-only login until bootstrap has installed the agent: bootstrap needs root to
 * harden the host, and its last step sets `PermitRootLogin no`.
 */
import ssh2 from 'ssh2';
import { stringify } from 'yaml';
import { GaxxError } from '../../proto/index.js';
import { AGENT_USER, SSHD_DROP_IN } from './layout.js';

/** An ed25519 host key pair in OpenSSH format. */
export interface HostKeyPair {
  privateKey: string;
  /** `ssh-ed25519 AAAA...` (no comment). */
  publicKey: string;
}

/** Generates a host key on the controller; only its public half is kept after spawn. */
export function generateHostKey(): HostKeyPair {
  const pair = ssh2.utils.generateKeyPairSync('ed25519');
  return { privateKey: pair.private, publicKey: pair.public.trim().split(/\s+/).slice(0, 2).join(' ') };
}

export interface CloudInitOptions {
  operatorPublicKey: string;
  hostKey: HostKeyPair;
  /** Power the VM off this long after boot (a safety net against forgotten fleets). */
  ttlSeconds?: number;
  /** Added to the TTL (default 10 minutes), so a fleet in use is not cut at the edge. */
  ttlMarginSeconds?: number;
}

/** The sshd drop-in written at first boot: keys only; bootstrap later forbids root entirely. */
export const FIRST_BOOT_SSHD = [
  '# gaxx first boot: keys only (bootstrap then sets PermitRootLogin no)',
  'PermitRootLogin prohibit-password',
  'PasswordAuthentication no',
  'KbdInteractiveAuthentication no',
  '',
].join('\n');

/** `#cloud-config` user data for one instance. */
export function cloudInitUserData(o: CloudInitOptions): string {
  const key = o.operatorPublicKey.trim();
  if (!/^ssh-ed25519 [A-Za-z0-9+/]+=*( .*)?$/.test(key)) throw new GaxxError('INVALID_ARGUMENT', 'the operator key must be an ssh-ed25519 public key');
  const doc: Record<string, unknown> = {
    users: [{ name: AGENT_USER, shell: '/bin/bash', lock_passwd: true, ssh_authorized_keys: [key] }],
    disable_root: false,
    ssh_pwauth: false,
    ssh_deletekeys: true,
    ssh_keys: { ed25519_private: o.hostKey.privateKey.trim() + '\n', ed25519_public: o.hostKey.publicKey.trim() },
    write_files: [
      { path: SSHD_DROP_IN, content: FIRST_BOOT_SSHD, permissions: '0644', owner: 'root:root' },
      { path: '/root/.ssh/authorized_keys', content: `${key}\n`, permissions: '0600', owner: 'root:root', append: true },
    ],
  };
  if (o.ttlSeconds !== undefined) {
    if (!(o.ttlSeconds > 0)) throw new GaxxError('INVALID_ARGUMENT', 'the TTL must be positive');
    const minutes = Math.ceil((o.ttlSeconds + (o.ttlMarginSeconds ?? 600)) / 60);
    doc.power_state = { mode: 'poweroff', delay: `+${minutes}`, message: 'gaxx: fleet TTL reached', condition: true };
  }
  return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}
