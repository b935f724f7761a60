/**
 * The shell bootstrap runs on a host, as pure functions of what it needs (so they are
 * unit-tested and reviewed in one place). Every script runs as root (directly or through
 * `sudo -n`), under `set -eu`, and prints only `key=value` lines that install.ts parses.
 */
import { isIP } from 'node:net';
import { shellQuote as q } from '../ssh/index.js';
import {
  AGENT_DIR,
  AGENT_PORT,
  AGENT_USER,
  CERTS_DIR,
  DATA_DIR,
  FIREWALL_FILE,
  LOG_DIR,
  METRICS_PORT,
  SSHD_DROP_IN,
  STATE_DIR,
  SUPERVISOR,
  UNIT_PATH,
} from './layout.js';
import { supervisorStartScript } from './unit.js';

/** What the probe found on the host. */
export interface HostFacts {
  uid: number;
  arch: string;
  nodeVersion: string | undefined;
  nodePath: string | undefined;
  systemd: boolean;
  nft: boolean;
  ufw: boolean;
  bwrap: boolean;
  apt: boolean;
  sudo: boolean;
  /** The controller's address as the host sees it (from SSH_CONNECTION). */
  clientAddress: string | undefined;
}

/** Runs as the SSH user (no root needed): facts about the host. */
export const PROBE_SCRIPT = [
  'echo "uid=$(id -u)"',
  'echo "arch=$(uname -m)"',
  'n=$(command -v node 2>/dev/null || true); echo "node=$n"; [ -n "$n" ] && echo "nodeVersion=$("$n" --version 2>/dev/null)"',
  '[ -d /run/systemd/system ] && echo systemd=1',
  'for b in nft ufw bwrap apt-get sudo; do p=$(PATH=$PATH:/usr/sbin:/sbin command -v $b 2>/dev/null || true); [ -n "$p" ] && echo "$b=1"; done',
  'echo "client=${SSH_CONNECTION%% *}"',
  'true',
].join('\n');

/** Parses the probe's output. */
export function parseFacts(out: string): HostFacts {
  const kv = new Map(out.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()] as const));
  const client = kv.get('client');
  return {
    uid: Number(kv.get('uid') ?? NaN),
    arch: kv.get('arch') ?? '',
    nodePath: kv.get('node') || undefined,
    nodeVersion: kv.get('nodeVersion') || undefined,
    systemd: kv.has('systemd'),
    nft: kv.has('nft'),
    ufw: kv.has('ufw'),
    bwrap: kv.has('bwrap'),
    apt: kv.has('apt-get'),
    sudo: kv.has('sudo'),
    clientAddress: client && isIP(client) ? client : undefined,
  };
}

/** Packages to install with apt: bubblewrap for task isolation, nftables when no firewall tool. */
export function packagesToInstall(f: HostFacts): string[] {
  return [...(f.bwrap ? [] : ['bubblewrap']), ...(f.nft || f.ufw ? [] : ['nftables'])];
}

/**
 * Root: installs missing packages (best effort, reported), creates gx (no sudo, locked
 * password, the operator's key for `gaxx ssh`), the agent's directories and a staging dir for
 * the uploads owned by the SSH user. Prints `staging=DIR` and `packages=ok|failed`.
 */
export function prepareScript(o: { packages: string[]; operatorKey: string; sshUser: string }): string {
  const home = `/home/${AGENT_USER}`;
  return [
    'set -eu',
    o.packages.length
      ? `if DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${o.packages.join(' ')} >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${o.packages.join(' ')} >/dev/null 2>&1; }; then echo packages=ok; else echo packages=failed; fi`
      : 'echo packages=ok',
    `id -u ${AGENT_USER} >/dev/null 2>&1 || useradd --create-home --user-group --shell /bin/bash ${AGENT_USER}`,
    `passwd -l ${AGENT_USER} >/dev/null`,
    // No group that sudo honours, no sudoers entry naming gx.
    `for g in sudo wheel admin; do gpasswd -d ${AGENT_USER} "$g" >/dev/null 2>&1 || true; done`,
    `if grep -rlsE '^[[:space:]]*${AGENT_USER}[[:space:]]' /etc/sudoers /etc/sudoers.d >/dev/null 2>&1; then echo sudoers=gx; fi`,
    `install -d -m 700 -o ${AGENT_USER} -g ${AGENT_USER} ${home}/.ssh`,
    `printf '%s\\n' ${q(o.operatorKey.trim())} > ${home}/.ssh/authorized_keys`,
    `chown ${AGENT_USER}:${AGENT_USER} ${home}/.ssh/authorized_keys && chmod 600 ${home}/.ssh/authorized_keys`,
    `install -d -m 755 -o root -g root ${AGENT_DIR} /opt/gaxx/node/bin /etc/gaxx`,
    `install -d -m 700 -o ${AGENT_USER} -g ${AGENT_USER} ${STATE_DIR} ${CERTS_DIR} ${DATA_DIR} ${LOG_DIR}`,
    `s=$(mktemp -d /tmp/gaxx-upload.XXXXXX) && chown ${q(o.sshUser)} "$s" && echo "staging=$s"`,
  ].join('\n');
}

/** The sshd drop-in: no root login, no passwords, no keyboard-interactive. */
export const SSHD_HARDENING = [
  '# gaxx: keys only, no root',
  'PermitRootLogin no',
  'PasswordAuthentication no',
  'KbdInteractiveAuthentication no',
  'PermitEmptyPasswords no',
  '',
].join('\n');

function saddrRules(addresses: string[], ports: number[]): string[] {
  const v4 = addresses.filter((a) => isIP(a) === 4);
  const v6 = addresses.filter((a) => isIP(a) === 6);
  const set = ports.join(', ');
  return [
    ...(v4.length ? [`    ip saddr { ${v4.join(', ')} } tcp dport { ${set} } accept`] : []),
    ...(v6.length ? [`    ip6 saddr { ${v6.join(', ')} } tcp dport { ${set} } accept`] : []),
  ];
}

/**
 * The cloud's instance metadata service, which hands out the VM's user data (with the SSH host
 * key gaxx made for it, cloud-init.ts) to any process that asks: 169.254.169.254 (Linode, Vultr,
 * all link-local IPv4) and Linode's IPv6 address.
 */
const METADATA_V4 = '169.254.0.0/16';
const METADATA_V6 = 'fd00:a9fe:a9fe::1';

/**
 * nftables ruleset: inbound denied by default; SSH and the agent only from the controller,
 * metrics from the controller and the monitors; the profiling port never (no rule opens it).
 * Outbound, the agent's user (`agentUser`: the agent and every task it runs) cannot reach the
 * cloud's metadata service: a task could read the VM's user data, the host's SSH key with it
 * (rejected, so a task fails at once). Root (cloud-init) still can.
 */
export function nftRuleset(controller: string[], monitors: string[], agentUser: string = AGENT_USER): string {
  return [
    'table inet gaxx',
    'delete table inet gaxx',
    'table inet gaxx {',
    '  chain input {',
    '    type filter hook input priority 0; policy drop;',
    '    ct state established,related accept',
    '    ct state invalid drop',
    '    iif lo accept',
    '    meta l4proto { icmp, ipv6-icmp } accept',
    ...saddrRules(controller, [22, AGENT_PORT, METRICS_PORT]),
    ...saddrRules(monitors, [METRICS_PORT]),
    '  }',
    '  chain output {',
    '    type filter hook output priority 0; policy accept;',
    `    meta skuid ${agentUser} ip daddr ${METADATA_V4} reject`,
    `    meta skuid ${agentUser} ip6 daddr ${METADATA_V6} reject`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** ufw commands to the same effect (used when ufw is present and nft is not). */
export function ufwScript(controller: string[], monitors: string[]): string {
  const allow = (a: string, port: number) => `ufw allow proto tcp from ${a} to any port ${port} >/dev/null`;
  return [
    'ufw --force reset >/dev/null',
    'ufw default deny incoming >/dev/null',
    'ufw default allow outgoing >/dev/null',
    ...controller.flatMap((a) => [22, AGENT_PORT, METRICS_PORT].map((p) => allow(a, p))),
    ...monitors.map((a) => allow(a, METRICS_PORT)),
    'ufw --force enable >/dev/null',
  ].join('\n');
}

export interface InstallScriptOptions {
  staging: string;
  firewall: 'nft' | 'ufw' | 'none';
  controller: string[];
  monitors: string[];
  systemd: boolean;
  unit: string;
  supervisor: string;
}

export interface PlaceScriptOptions {
  staging: string;
  /** Payload files relative to AGENT_DIR. */
  agentFiles: string[];
  nodeUploaded: boolean;
  /** The Node that runs the agent on the host (it also makes the agent's key). */
  nodePath: string;
}

/** Marks the agent's public key in placeScript's output. */
export const PUBLIC_KEY_BEGIN = '-----BEGIN PUBLIC KEY-----';
export const PUBLIC_KEY_END = '-----END PUBLIC KEY-----';

/**
 * Node program (run as root with umask 077) that makes the agent's EC P-256 key (PKCS#8) at
 * argv[1] and prints its public half, for hosts without openssl. The key is made on the host, so
 * it never travels and the controller spends no key generation per host; P-256 takes ~1 ms
 * where RSA-2048 took ~150 ms of the host's CPU, and its handshake signatures are cheaper too.
 */
const KEYGEN_JS = [
  "const c = require('node:crypto');",
  "const k = c.generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });",
  "require('node:fs').writeFileSync(process.argv[1], k.privateKey, { mode: 0o600 });",
  'process.stdout.write(k.publicKey);',
].join(' ');

/**
 * Root: moves the verified agent files (and Node) into place and makes the agent's key in its
 * certificate directory (gx, 0600). Prints the key's public half (PEM) for the certificate.
 */
export function placeScript(o: PlaceScriptOptions): string {
  const s = o.staging;
  return [
    'set -eu',
    ...o.agentFiles.map((f) => `install -D -m 644 -o root -g root ${q(`${s}/agent/${f}`)} ${q(`${AGENT_DIR}/${f}`)}`),
    ...(o.nodeUploaded ? [`install -m 755 -o root -g root ${q(`${s}/node`)} /opt/gaxx/node/bin/node`] : []),
    // openssl when the host has it (it starts in milliseconds), else the agent's own Node.
    `if command -v openssl >/dev/null 2>&1; then (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out ${CERTS_DIR}/key.pem.new 2>/dev/null && openssl pkey -in ${CERTS_DIR}/key.pem.new -pubout); else (umask 077 && ${q(o.nodePath)} -e ${q(KEYGEN_JS)} ${CERTS_DIR}/key.pem.new); fi`,
    `chown ${AGENT_USER}:${AGENT_USER} ${CERTS_DIR}/key.pem.new && mv -f ${CERTS_DIR}/key.pem.new ${CERTS_DIR}/key.pem`,
  ].join('\n');
}

/** The PEM public key placeScript printed; undefined when there is none. */
export function publicKeyFrom(out: string): string | undefined {
  const begin = out.indexOf(PUBLIC_KEY_BEGIN);
  const end = out.indexOf(PUBLIC_KEY_END, begin);
  return begin >= 0 && end > begin ? `${out.slice(begin, end + PUBLIC_KEY_END.length)}\n` : undefined;
}

function installFiles(o: InstallScriptOptions): string[] {
  return ['cert.pem', 'ca.pem', 'revoked.json'].map(
    (f) => `install -m 644 -o ${AGENT_USER} -g ${AGENT_USER} ${q(`${o.staging}/certs/${f}`)} ${CERTS_DIR}/${f}`,
  );
}

function firewallLines(o: InstallScriptOptions): string[] {
  if (o.firewall === 'nft') {
    return [`printf '%s' ${q(nftRuleset(o.controller, o.monitors))} > ${FIREWALL_FILE}`, `nft -f ${FIREWALL_FILE}`, 'echo firewall=nft'];
  }
  if (o.firewall === 'ufw') return [ufwScript(o.controller, o.monitors), 'echo firewall=ufw'];
  return ['echo firewall=none'];
}

function serviceLines(o: InstallScriptOptions): string[] {
  if (o.systemd) {
    const fw = o.firewall === 'nft' ? [`printf '%s' ${q(firewallUnit())} > /etc/systemd/system/gaxx-firewall.service`] : [];
    const enableFw = o.firewall === 'nft' ? ['systemctl enable gaxx-firewall.service >/dev/null 2>&1'] : [];
    return [
      ...fw,
      `printf '%s' ${q(o.unit)} > ${UNIT_PATH}`,
      'systemctl daemon-reload',
      ...enableFw,
      'systemctl enable gaxx-agent.service >/dev/null 2>&1',
      'systemctl restart gaxx-agent.service',
      'echo service=systemd',
    ];
  }
  return [`printf '%s' ${q(o.supervisor)} > ${SUPERVISOR}`, `chmod 755 ${SUPERVISOR}`, supervisorStartScript(SUPERVISOR), 'echo service=supervisor'];
}

/** Loads the firewall at boot on systemd hosts. */
export function firewallUnit(): string {
  return [
    '[Unit]',
    'Description=gaxx firewall',
    'Before=network-pre.target',
    'Wants=network-pre.target',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=/usr/sbin/nft -f ${FIREWALL_FILE}`,
    'RemainAfterExit=yes',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/**
 * Shell (root) that has sshd read its config again on a host without systemd: SIGHUP to the pid
 * `pidFile` names, and only when that pid runs sshd. A pid file left by an sshd that died may
 * name a pid another program has been given since, which the SIGHUP would end: that is refused.
 */
export function reloadSshdShell(pidFile = '/run/sshd.pid'): string {
  return [
    `p=$(cat '${pidFile}' 2>/dev/null || true)`,
    `case "$p" in "" | *[!0-9]*) echo "no sshd pid in ${pidFile}" >&2; exit 1 ;; esac`,
    `case "$(readlink "/proc/$p/exe" 2>/dev/null)" in */sshd | */sshd" (deleted)") kill -HUP "$p" ;; *) echo "pid $p in ${pidFile} is not sshd: not reloaded" >&2; exit 1 ;; esac`,
  ].join('\n');
}

/**
 * Root: moves the verified certificates into place, applies the firewall, starts the agent, and
 * last hardens sshd (checked with `sshd -t` first; our own session survives the reload).
 */
export function installScript(o: InstallScriptOptions): string {
  return [
    'set -eu',
    ...installFiles(o),
    `rm -rf ${q(o.staging)}`,
    ...firewallLines(o),
    ...serviceLines(o),
    `printf '%s' ${q(SSHD_HARDENING)} > ${SSHD_DROP_IN} && chmod 644 ${SSHD_DROP_IN}`,
    `sshd=$(PATH=$PATH:/usr/sbin:/sbin command -v sshd); "$sshd" -t || { rm -f ${SSHD_DROP_IN}; echo sshd=invalid; exit 1; }`,
    o.systemd ? 'systemctl reload ssh.service 2>/dev/null || systemctl reload sshd.service' : reloadSshdShell(),
    'echo sshd=hardened',
  ].join('\n');
}
