import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  archMatches,
  cloudInitUserData,
  generateHostKey,
  layout,
  nftRuleset,
  nodeUsable,
  renderAgentUnit,
  renderSupervisor,
  SSHD_HARDENING,
} from '../../cli/bootstrap/index.js';
import { TTL_ENABLE_CMD, TTL_SERVICE_PATH, TTL_TIMER_PATH } from '../../cli/bootstrap/cloud-init.js';
import { parseFacts } from '../../cli/bootstrap/host-scripts.js';
import { parseInventory } from '../../cli/providers/ssh.js';
import { isGaxxError } from '../../proto/index.js';
import { repoRoot } from '../helpers/agent.js';
import { cloudConfigScript } from '../helpers/cloud-config-apply.js';

const SHIPPED_UNIT = join(repoRoot(), 'cli', 'bootstrap', 'systemd', 'gaxx-agent.service');
const opKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKh6eM2b2rRr0c4F3rYxq1qvT4s2h4b3Zk3j0l9Wm8aQ op@laptop';

function hasSystemdAnalyze(): boolean {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The ExecStart command line of a unit. */
const unitExecStart = (unit: string): string => (unit.split('\n').find((l) => l.startsWith('ExecStart=')) ?? '').slice('ExecStart='.length);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isGaxxError(e) ? e.code : 'not a GaxxError';
  }
  return undefined;
}

describe('agent unit', () => {
  it('ships the unit bootstrap installs (with the host node path), hardened as promised', () => {
    const unit = renderAgentUnit('/usr/bin/node');
    expect(readFileSync(SHIPPED_UNIT, 'utf8')).toBe(unit);
    for (const line of [
      'User=gx',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'PrivateTmp=yes',
      'CapabilityBoundingSet=',
      'AmbientCapabilities=',
      'Restart=on-failure',
    ]) {
      expect(unit.split('\n')).toContain(line);
    }
    expect(unit).not.toContain('6060');
    expect(renderAgentUnit('/opt/gaxx/node/bin/node')).toContain(
      'ExecStart=/opt/gaxx/node/bin/node --use-openssl-ca --max-semi-space-size=2 --openssl-config=/opt/gaxx/agent/gaxx-openssl.cnf /opt/gaxx/agent/gaxx-agent.mjs',
    );
  });

  it("starts a fleet's agent with the fleet's creation time (--fleet-since), in the unit and the supervisor, so restarts keep it", () => {
    expect(unitExecStart(renderAgentUnit('/usr/bin/node'))).not.toContain('--fleet-since');
    expect(unitExecStart(renderAgentUnit('/usr/bin/node', 1_767_225_600_123))).toMatch(
      / --audit-log \/var\/log\/gaxx\/audit\.log --fleet-since 1767225600123$/,
    );
    expect(renderSupervisor('/usr/bin/node', 1_767_225_600_123)).toContain("'--fleet-since' '1767225600123'");
    expect(renderSupervisor('/usr/bin/node')).not.toContain('--fleet-since');
  });

  it.skipIf(!hasSystemdAnalyze())('passes systemd-analyze verify', () => {
    const out = execFileSync('systemd-analyze', ['verify', SHIPPED_UNIT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toBe('');
  });
});

describe('cloud-init user data', () => {
  it('creates gx without sudo or password, pins the host key, keeps sshd to keys, and sets the TTL poweroff', () => {
    const hostKey = generateHostKey();
    const text = cloudInitUserData({ operatorPublicKey: opKey, hostKey, ttlSeconds: 3600 });
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    const doc = parse(text) as Record<string, unknown> & { users: Array<Record<string, unknown>> };
    expect(doc.users).toEqual([{ name: 'gx', shell: '/bin/bash', lock_passwd: true, ssh_authorized_keys: [opKey] }]);
    expect(JSON.stringify(doc)).not.toMatch(/sudo|passwd"\s*:\s*"|NOPASSWD/);
    expect(doc.ssh_pwauth).toBe(false);
    expect(doc.power_state).toMatchObject({ mode: 'poweroff', delay: '+70' });
    const applied = cloudConfigScript(text);
    expect(applied.hostPublicKey).toBe(hostKey.publicKey);
    expect(applied.files).toContain(layout.SSHD_DROP_IN);
  });

  it('omits the poweroff without a TTL and refuses a non-ed25519 operator key', () => {
    const doc = parse(cloudInitUserData({ operatorPublicKey: opKey, hostKey: generateHostKey() })) as Record<string, unknown>;
    expect(doc.power_state).toBeUndefined();
    expect(codeOf(() => cloudInitUserData({ operatorPublicKey: 'ssh-rsa AAAAB3Nza', hostKey: generateHostKey() }))).toBe('INVALID_ARGUMENT');
  });
});

describe('host hardening pieces', () => {
  it('firewall: deny by default, agent ports only from the controller, metrics for monitors, never 6060', () => {
    const rules = nftRuleset(['203.0.113.5', '2001:db8::5'], ['203.0.113.9']);
    expect(rules).toContain('policy drop;');
    expect(rules).toContain('ip saddr { 203.0.113.5 } tcp dport { 22, 8088, 9091 } accept');
    expect(rules).toContain('ip6 saddr { 2001:db8::5 } tcp dport { 22, 8088, 9091 } accept');
    expect(rules).toContain('ip saddr { 203.0.113.9 } tcp dport { 9091 } accept');
    expect(rules).not.toContain('6060');
  });

  it('sshd drop-in: no root, no passwords, no keyboard-interactive', () => {
    expect(SSHD_HARDENING.split('\n')).toEqual(expect.arrayContaining(['PermitRootLogin no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no']));
  });

  it('probe facts, Node version and architecture checks', () => {
    const f = parseFacts('uid=0\narch=x86_64\nnode=/usr/bin/node\nnodeVersion=v18.19.0\nnft=1\nclient=198.18.0.1\n');
    expect(f).toMatchObject({ uid: 0, arch: 'x86_64', nft: true, ufw: false, systemd: false, clientAddress: '198.18.0.1' });
    expect(nodeUsable(f.nodeVersion)).toBe(false);
    expect(nodeUsable('v20.11.1')).toBe(true);
    expect(nodeUsable(undefined)).toBe(false);
    expect(archMatches('x64', 'x86_64')).toBe(true);
    expect(archMatches('arm64', 'x86_64')).toBe(false);
    expect(archMatches('arm64', 'aarch64')).toBe(true);
  });
});

describe('SSH inventory', () => {
  it('applies defaults and resolves key paths against the inventory', () => {
    const hosts = parseInventory('hosts:\n  - host: 192.0.2.1\n  - {host: web1.example, port: 2222, user: deploy, key: keys/id}\n', '/etc/gaxx/inv.yaml');
    expect(hosts).toEqual([
      { host: '192.0.2.1', port: 22, user: 'root', key: undefined },
      { host: 'web1.example', port: 2222, user: 'deploy', key: '/etc/gaxx/keys/id' },
    ]);
  });

  it('reports every problem with its dot-path (CONFIG_INVALID)', () => {
    let issues: unknown;
    try {
      parseInventory('hosts:\n  - host: 192.0.2.1\n    port: "22"\n  - host: "bad host"\n    extra: 1\n', 'inv.yaml');
    } catch (e) {
      expect(isGaxxError(e, 'CONFIG_INVALID')).toBe(true);
      issues = (e as { details?: { issues?: string[] } }).details?.issues;
    }
    const paths = (issues as string[]).map((i) => i.split(':')[0]);
    expect(paths).toEqual(expect.arrayContaining(['hosts.0.port', 'hosts.1.host', 'hosts.1']));
    expect(codeOf(() => parseInventory('hosts: []\n', 'inv.yaml'))).toBe('CONFIG_INVALID');
    expect(codeOf(() => parseInventory('hosts: [\n', 'inv.yaml'))).toBe('CONFIG_INVALID');
    expect(codeOf(() => parseInventory('hosts:\n  - host: 192.0.2.1\n  - host: 192.0.2.1\n', 'inv.yaml'))).toBe('CONFIG_INVALID');
    expect(codeOf(() => parseInventory('hosts:\n  - {host: 192.0.2.1, key: ~/k}\n', 'inv.yaml'))).toBe('CONFIG_INVALID');
  });

  describe('the TTL safety net', () => {
    const now = Date.UTC(2026, 0, 1, 0, 0, 0);
    const doc = parse(cloudInitUserData({ operatorPublicKey: opKey, hostKey: generateHostKey(), ttlSeconds: 3600, now })) as {
      write_files: Array<{ path: string; content: string }>;
      runcmd: string[];
      power_state: Record<string, unknown>;
    };
    const file = (p: string): string => doc.write_files.find((f) => f.path === p)?.content ?? '';

    it('a systemd timer at TTL plus the 10 minute margin (UTC wall clock, persistent, and after boot), enabled by runcmd', () => {
      const timer = file(TTL_TIMER_PATH);
      expect(timer).toContain('OnCalendar=2026-01-01 01:10:00 UTC\n');
      expect(timer).toContain('OnBootSec=4200s\n');
      expect(timer).toContain('Persistent=true\n');
      expect(timer).toContain('WantedBy=timers.target\n');
      expect(file(TTL_SERVICE_PATH)).toContain('ExecStart=/bin/systemctl --no-block poweroff\n');
      expect(doc.runcmd).toEqual([TTL_ENABLE_CMD]);
      // runcmd strings run through sh: they must parse.
      execFileSync('sh', ['-n', '-c', TTL_ENABLE_CMD]);
      expect(doc.power_state).toMatchObject({ mode: 'poweroff', delay: '+70', condition: true });
      // The test hosts' applier accepts it (and, without systemd as pid 1, the enable is a no-op there).
      expect(cloudConfigScript(cloudInitUserData({ operatorPublicKey: opKey, hostKey: generateHostKey(), ttlSeconds: 5 })).runcmd).toBe(1);
    });

    it('refuses a TTL that is not positive (INVALID_ARGUMENT)', () => {
      for (const ttlSeconds of [0, -5, Number.NaN])
        expect(codeOf(() => cloudInitUserData({ operatorPublicKey: opKey, hostKey: generateHostKey(), ttlSeconds }))).toBe('INVALID_ARGUMENT');
    });

    it.skipIf(!hasSystemdAnalyze())('the timer and its service pass systemd-analyze verify', () => {
      const dir = mkdtempSync(join(tmpdir(), 'gxttl-unit-'));
      try {
        for (const p of [TTL_TIMER_PATH, TTL_SERVICE_PATH]) writeFileSync(join(dir, p.split('/').pop() as string), file(p));
        const out = execFileSync('systemd-analyze', ['verify', join(dir, 'gaxx-ttl.timer'), join(dir, 'gaxx-ttl.service')], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        expect(out).toBe('');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
