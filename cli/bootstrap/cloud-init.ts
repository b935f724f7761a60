/**
 * cloud-init user data for a fresh VM: the user gx (no sudo, no password) with the operator's
 * key, the host key gaxx generated locally and pins (so even the first SSH connection is
 * verified), sshd limited to keys at once, and optionally a poweroff safety net.
 *
 * Root keeps key-only login until bootstrap has installed the agent: bootstrap needs root to
 * harden the host, and its last step sets `PermitRootLogin no`.
 */
import { stringify } from 'yaml';
import { GaxxError } from '../../proto/index.js';
import { generateEd25519 } from '../ssh/index.js';
import { AGENT_USER, SSHD_DROP_IN } from './layout.js';

/** An ed25519 host key pair in OpenSSH format. */
export interface HostKeyPair {
  privateKey: string;
  /** `ssh-ed25519 AAAA...` (no comment). */
  publicKey: string;
}

/** Generates a host key on the controller; only its public half is kept after spawn. */
export function generateHostKey(): HostKeyPair {
  return generateEd25519();
}

export interface CloudInitOptions {
  operatorPublicKey: string;
  hostKey: HostKeyPair;
  /** Power the VM off this long after boot (a safety net against forgotten fleets). */
  ttlSeconds?: number;
  /** Added to the TTL (default 10 minutes), so a fleet in use is not cut at the edge. */
  ttlMarginSeconds?: number;
  /** The clock the poweroff's calendar time is computed from (ms epoch; tests). */
  now?: number;
}

/** The margin added to a fleet's TTL before its VMs power themselves off. */
export const DEFAULT_TTL_MARGIN_SECONDS = 600;

/** Where the poweroff timer and its service are written on the VM. */
export const TTL_TIMER_PATH = '/etc/systemd/system/gaxx-ttl.timer';
export const TTL_SERVICE_PATH = '/etc/systemd/system/gaxx-ttl.service';

/** `YYYY-MM-DD HH:MM:SS UTC`: a systemd calendar time (UTC, so the VM's time zone does not matter). */
function calendarUtc(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/**
 * The poweroff timer: at the fleet's deadline (wall clock, Persistent so a VM that was off or
 * rebooting at the deadline powers off as soon as it is up again) or that long after boot,
 * whichever comes first (a VM whose clock is wrong still stops).
 */
export function ttlTimerUnit(deadlineMs: number, afterBootSeconds: number): string {
  return [
    '[Unit]',
    "Description=gaxx: power off at the fleet's TTL plus margin",
    '',
    '[Timer]',
    `OnCalendar=${calendarUtc(deadlineMs)}`,
    `OnBootSec=${afterBootSeconds}s`,
    'Persistent=true',
    'AccuracySec=30s',
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
}

/** The service the timer starts. */
export const TTL_SERVICE_UNIT = [
  '[Unit]',
  "Description=gaxx: power off (the fleet's TTL passed)",
  '',
  '[Service]',
  'Type=oneshot',
  'ExecStart=/bin/systemctl --no-block poweroff',
  '',
].join('\n');

/**
 * Enables the timer on a systemd host (the usual `sd_booted` test). cloud-init runs it once,
 * after write_files put the units in place, so a daemon-reload is needed first.
 */
export const TTL_ENABLE_CMD = 'if [ -d /run/systemd/system ]; then systemctl daemon-reload && systemctl enable --now gaxx-ttl.timer; fi';

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
  if (o.ttlSeconds !== undefined) addPowerOff(doc, o.ttlSeconds, o.ttlMarginSeconds ?? DEFAULT_TTL_MARGIN_SECONDS, o.now ?? Date.now());
  return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}

/**
 * Two independent ways to power off at TTL plus margin, both in every Debian/Ubuntu cloud image
 * without extra packages: a systemd timer (survives a reboot, see ttlTimerUnit) and cloud-init's
 * own power_state (`shutdown -P +M` once cloud-init finished, for an image whose timer did not
 * start).
 */
function addPowerOff(doc: Record<string, unknown>, ttlSeconds: number, marginSeconds: number, now: number): void {
  if (!(ttlSeconds > 0) || !Number.isFinite(ttlSeconds)) throw new GaxxError('INVALID_ARGUMENT', 'the TTL must be positive');
  if (!(marginSeconds >= 0)) throw new GaxxError('INVALID_ARGUMENT', 'the TTL margin must not be negative');
  const total = Math.ceil(ttlSeconds + marginSeconds);
  (doc.write_files as unknown[]).push(
    { path: TTL_SERVICE_PATH, content: TTL_SERVICE_UNIT, permissions: '0644', owner: 'root:root' },
    { path: TTL_TIMER_PATH, content: ttlTimerUnit(now + total * 1000, total), permissions: '0644', owner: 'root:root' },
  );
  doc.runcmd = [TTL_ENABLE_CMD];
  doc.power_state = { mode: 'poweroff', delay: `+${Math.ceil(total / 60)}`, message: 'gaxx: fleet TTL reached', condition: true };
}
