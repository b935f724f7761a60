/**
 * A cloud-config applier for test hosts: turns the subset of cloud-init user data that gaxx
 * sends into a shell script run inside the host before its sshd starts, as cloud-init would on
 * a VM's first boot. Supported: users (name, shell, lock_passwd, ssh_authorized_keys, sudo is
 * recorded), ssh_keys (ed25519 host keys; existing host keys deleted as ssh_deletekeys does),
 * write_files (content, encoding b64, permissions, owner, append), runcmd. power_state (the TTL
 * poweroff) is recorded, not acted on. Anything else is refused, so a new key gaxx starts to
 * send cannot be silently ignored by the tests.
 */
import { parse } from 'yaml';

/** What the applier understood from the user data, for assertions. */
export interface AppliedCloudConfig {
  script: string;
  users: Array<{ name: string; sudo: unknown; lockPassword: boolean; keys: string[] }>;
  hostPublicKey: string | undefined;
  files: string[];
  runcmd: number;
  powerState: { mode: string; delay: string | undefined } | undefined;
}

const KNOWN = new Set([
  'users',
  'ssh_keys',
  'ssh_deletekeys',
  'ssh_pwauth',
  'disable_root',
  'write_files',
  'runcmd',
  'power_state',
  'package_update',
  'packages',
]);

/** Single-quotes a string for sh. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function writeFileCmd(path: string, content: Buffer, mode: string, owner: string, append = false): string {
  return [
    `mkdir -p "$(dirname ${shq(path)})"`,
    `printf %s ${shq(content.toString('base64'))} | base64 -d ${append ? '>>' : '>'} ${shq(path)}`,
    `chmod ${shq(mode)} ${shq(path)}`,
    `chown ${shq(owner)} ${shq(path)}`,
  ].join('\n');
}

type Obj = Record<string, unknown>;
const asObj = (v: unknown, what: string): Obj => {
  if (v && typeof v === 'object' && !Array.isArray(v)) return v as Obj;
  throw new Error(`cloud-config: ${what} must be a mapping`);
};
const asList = (v: unknown, what: string): unknown[] => {
  if (v === undefined) return [];
  if (Array.isArray(v)) return v;
  throw new Error(`cloud-config: ${what} must be a list`);
};

function userCmds(u: Obj, out: AppliedCloudConfig): string[] {
  const name = String(u.name);
  if (!/^[a-z_][a-z0-9_-]*$/.test(name)) throw new Error(`cloud-config: bad user name ${name}`);
  const keys = asList(u.ssh_authorized_keys, `users.${name}.ssh_authorized_keys`).map(String);
  const lock = u.lock_passwd !== false;
  out.users.push({ name, sudo: u.sudo, lockPassword: lock, keys });
  const home = name === 'root' ? '/root' : `/home/${name}`;
  const cmds: string[] = [];
  if (name !== 'root') cmds.push(`id -u ${name} >/dev/null 2>&1 || useradd -m -s ${shq(String(u.shell ?? '/bin/bash'))} ${name}`);
  if (lock && name !== 'root') cmds.push(`passwd -l ${name} >/dev/null`);
  if (keys.length > 0) {
    cmds.push(`install -d -m 700 -o ${name} -g ${name} ${home}/.ssh`);
    cmds.push(writeFileCmd(`${home}/.ssh/authorized_keys`, Buffer.from(keys.join('\n') + '\n'), '600', `${name}:${name}`));
  }
  return cmds;
}

function hostKeyCmds(keys: Obj, deleteOld: boolean, out: AppliedCloudConfig): string[] {
  const cmds = deleteOld ? ['rm -f /etc/ssh/ssh_host_*'] : [];
  for (const [k, v] of Object.entries(keys)) {
    const m = /^(ed25519|ecdsa|rsa)_(private|public)$/.exec(k);
    if (!m) throw new Error(`cloud-config: ssh_keys.${k} is not supported`);
    const file = `/etc/ssh/ssh_host_${m[1]}_key${m[2] === 'public' ? '.pub' : ''}`;
    const text = String(v).trim() + '\n';
    if (k === 'ed25519_public') out.hostPublicKey = text.trim();
    cmds.push(writeFileCmd(file, Buffer.from(text), m[2] === 'public' ? '644' : '600', 'root:root'));
  }
  return cmds;
}

function writeFilesCmds(files: unknown[], out: AppliedCloudConfig): string[] {
  return files.map((f, i) => {
    const o = asObj(f, `write_files.${i}`);
    const path = String(o.path);
    if (!path.startsWith('/')) throw new Error(`cloud-config: write_files.${i}.path must be absolute`);
    const enc = String(o.encoding ?? 'text');
    const raw = String(o.content ?? '');
    const content = enc === 'b64' || enc === 'base64' ? Buffer.from(raw, 'base64') : Buffer.from(raw);
    out.files.push(path);
    return writeFileCmd(path, content, String(o.permissions ?? '0644').replace(/^0o/, '0'), String(o.owner ?? 'root:root'), o.append === true);
  });
}

function runcmdCmds(cmds: unknown[]): string[] {
  return cmds.map((c, i) => {
    if (typeof c === 'string') return `sh -c ${shq(c)}`;
    if (Array.isArray(c)) return c.map((a) => shq(String(a))).join(' ');
    throw new Error(`cloud-config: runcmd.${i} must be a string or a list`);
  });
}

/** Translates cloud-config user data into a shell script (set -e) plus what it contained. */
export function cloudConfigScript(userData: string): AppliedCloudConfig {
  if (!userData.startsWith('#cloud-config')) throw new Error('user data is not #cloud-config');
  const doc = asObj(parse(userData) ?? {}, 'the document');
  for (const k of Object.keys(doc)) if (!KNOWN.has(k)) throw new Error(`cloud-config: key ${k} is not supported by the test host`);
  const out: AppliedCloudConfig = { script: '', users: [], hostPublicKey: undefined, files: [], runcmd: 0, powerState: undefined };
  const cmds: string[] = [];
  for (const [i, u] of asList(doc.users, 'users').entries()) {
    if (u === 'default') continue;
    cmds.push(...userCmds(asObj(u, `users.${i}`), out));
  }
  if (doc.ssh_keys !== undefined) cmds.push(...hostKeyCmds(asObj(doc.ssh_keys, 'ssh_keys'), doc.ssh_deletekeys !== false, out));
  cmds.push(...writeFilesCmds(asList(doc.write_files, 'write_files'), out));
  const runcmd = asList(doc.runcmd, 'runcmd');
  out.runcmd = runcmd.length;
  cmds.push(...runcmdCmds(runcmd));
  if (doc.power_state !== undefined) {
    const p = asObj(doc.power_state, 'power_state');
    out.powerState = { mode: String(p.mode), delay: p.delay === undefined ? undefined : String(p.delay) };
  }
  out.script = cmds.join('\n');
  return out;
}
