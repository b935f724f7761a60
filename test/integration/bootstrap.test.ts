/**
 * Bootstrap end to end against real sshd test hosts (own network and mount namespaces), from an
 * SSH inventory with strict known_hosts: the agent runs as gx without sudo, sshd refuses
 * passwords and root, the firewall is loaded and keeps other hosts off the agent port, :6060 is
 * closed, and the agent answers Health over mTLS as the expected identity. A host presenting a
 * key other than the known one is aborted before anything is issued or sent.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa, loadCertDir, type CertBundle } from '../../certs/index.js';
import {
  bootstrapHosts,
  cloudInitUserData,
  generateHostKey,
  type BootstrapEvent,
  type BootstrapResult,
  type BootstrapTarget,
} from '../../cli/bootstrap/index.js';
import { createSshProvider } from '../../cli/providers/ssh.js';
import { generateEd25519, KnownHosts, connectSsh, ensureSshKeyPair, execRemote, type SshKeyPair } from '../../cli/ssh/index.js';
import { isGaxxError } from '../../proto/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { builtAgentBundle } from '../helpers/agent.js';
import { expectFirewalled, methodsOffered } from '../helpers/fleet-host-checks.js';
import { issueCertDir } from '../helpers/pki.js';
import { startTestHost, stopAllTestHosts, type TestHost } from '../helpers/test-host.js';

const FLEET = 'inv';
/** When the fleet was created: each agent is started with it (--fleet-since). */
const FLEET_SINCE = Date.now();
let dir: string;
let ca: FleetCa;
let operator: CertBundle;
let key: SshKeyPair;
let knownHosts: KnownHosts;
let hosts: TestHost[];
let results: BootstrapResult[];
const events: BootstrapEvent[] = [];

async function targetsFromInventory(file: string, accept = false): Promise<BootstrapTarget[]> {
  const provider = createSshProvider({ options: { inventory: file } });
  const n = provider.capabilities.maxInstances ?? 0;
  const instances = await Promise.all(Array.from({ length: n }, (_, i) => provider.create({ fleet: FLEET, label: `h${i + 1}`, index: i })));
  return instances.map((inst) => ({
    name: inst.label,
    host: inst.ipv4 as string,
    port: inst.ssh?.port ?? 22,
    user: inst.ssh?.user ?? 'root',
    privateKey: readFileSync(inst.ssh?.keyPath ?? key.privateKeyPath),
    hostKey: { kind: 'known-hosts', knownHosts, acceptNew: accept, fleet: FLEET },
    addresses: [inst.ipv4 as string],
  }));
}

function options(controller: string) {
  return {
    fleet: FLEET,
    fleetSince: FLEET_SINCE,
    ca,
    operatorCreds: operator,
    operatorPublicKey: key.publicKey,
    controllerAddresses: [controller],
    connectDeadlineMs: 30_000,
    onProgress: (e: BootstrapEvent) => events.push(e),
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gx-boot-'));
  ({ ca } = await FleetCa.init(join(dir, 'ca')));
  await issueCertDir(ca, join(dir, 'operator'), { identity: { role: 'operator', name: 'alice' } });
  operator = loadCertDir(join(dir, 'operator'));
  key = ensureSshKeyPair(join(dir, 'id_ed25519'), join(dir, 'id_ed25519.pub'), 'gaxx-test');
  knownHosts = new KnownHosts(join(dir, 'known_hosts'), [join(dir, 'user_known_hosts')]);
  hosts = await Promise.all([0, 1].map(() => startTestHost({ authorizedKeys: [key.publicKey] })));
  // The second host has no Node: bootstrap uploads the controller's. Nor openssl: that Node makes the agent's key.
  await hosts[1]?.sh('mv /usr/bin/node /usr/bin/node.hidden && mv /usr/bin/openssl /usr/bin/openssl.hidden');
  for (const h of hosts) knownHosts.add(h.address, 22, h.hostPublicKey, 'pinned-by-test');
  const inventory = join(dir, 'inventory.yaml');
  writeFileSync(inventory, `hosts:\n${hosts.map((h) => `  - host: ${h.address}\n    key: id_ed25519\n`).join('')}`);
  const targets = await targetsFromInventory(inventory);
  results = await bootstrapHosts(targets, { ...options(hosts[0]?.controllerAddress as string), agentBundle: builtAgentBundle() });
}, 240_000);

afterAll(async () => {
  await stopAllTestHosts();
  rmSync(dir, { recursive: true, force: true });
});

describe('bootstrap of an SSH inventory', () => {
  it('brings every host to a healthy agent', () => {
    expect(results.map((r) => (r.ok ? 'ok' : `${r.error.code}: ${r.error.message}`))).toEqual(['ok', 'ok']);
    const steps = events.filter((e) => e.host === 'h1').map((e) => e.step);
    expect(steps[0]).toBe('connect');
    expect(steps.at(-1)).toBe('ready');
    expect(results[1]?.ok && results[1].report.nodeUploaded).toBe(true);
    expect(results[0]?.ok && results[0].report.nodeUploaded).toBe(false);
  });

  it('answers Health over mTLS only as the expected identity', async () => {
    for (const [i, h] of hosts.entries()) {
      const good = AgentClient.connect({ address: `${h.address}:8088`, expect: { fleet: FLEET, host: `h${i + 1}` } }, operator);
      expect(await good.health()).toBe('SERVING');
      good.close();
    }
    const wrong = AgentClient.connect({ address: `${hosts[0]?.address}:8088`, expect: { fleet: FLEET, host: 'h2' } }, operator);
    const code = await wrong.health().then(
      () => 'served',
      (e: unknown) => (isGaxxError(e) ? e.code : 'other'),
    );
    wrong.close();
    expect(code).toBe('IDENTITY_MISMATCH');
  });

  it('made each agent key on its host as EC P-256 (openssl on h1, the Node of h2), for its certificate', async () => {
    for (const h of hosts) {
      expect((await h.sh('stat -c "%U %a" /var/lib/gaxx/certs/key.pem')).stdout.trim()).toBe('gx 600');
      const key = createPrivateKey((await h.sh('cat /var/lib/gaxx/certs/key.pem')).stdout);
      expect([key.asymmetricKeyType, key.asymmetricKeyDetails?.namedCurve]).toEqual(['ec', 'prime256v1']);
      const cert = new X509Certificate((await h.sh('cat /var/lib/gaxx/certs/cert.pem')).stdout);
      expect(cert.checkPrivateKey(key)).toBe(true);
      expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    }
  });

  it("runs the agent as gx, with its fleet's creation time (--fleet-since), and gx cannot sudo", async () => {
    for (const h of hosts) {
      const ps = await h.sh("ps -eo user:16,args | grep '[g]axx-agent.mjs' | grep -v 'sh /opt' | awk '{print $1}' | sort -u");
      expect(ps.stdout.trim()).toBe('gx');
      const args = await h.sh("ps -eo args | grep '[g]axx-agent.mjs' | grep -v 'sh /opt'");
      expect(args.stdout.trim()).toMatch(new RegExp(` --fleet-since ${FLEET_SINCE}$`));
      const sudo = await h.exec(['sudo', '-n', 'true'], { user: 'gx' });
      expect(sudo.code).not.toBe(0);
      expect((await h.sh('sudo -l -U gx')).stdout).toContain('not allowed');
      expect((await h.sh('passwd -S gx')).stdout.split(' ')[1]).toBe('L');
      // sudo itself works on the host: the refusal above is about gx.
      expect((await h.exec(['sudo', '-n', 'true'])).code).toBe(0);
    }
  });

  it('sshd refuses passwords and root, and still lets gx in with the key', async () => {
    const h = hosts[0] as TestHost;
    expect(await methodsOffered(h, 'gx', 15_000)).toEqual(['publickey']);
    const target = { host: h.address, port: 22 };
    const pinned = { kind: 'pinned' as const, publicKey: h.hostPublicKey };
    const root = await connectSsh({ ...target, user: 'root', privateKey: readFileSync(key.privateKeyPath) }, pinned, { deadlineMs: 10_000 }).then(
      (c) => (c.end(), 'connected'),
      (e: unknown) => (isGaxxError(e) ? e.code : 'other'),
    );
    expect(root).toBe('UNAUTHENTICATED');
    const gx = await connectSsh({ ...target, user: 'gx', privateKey: readFileSync(key.privateKeyPath) }, pinned, { deadlineMs: 10_000 });
    expect((await execRemote(gx, 'id -un')).stdout.trim()).toBe('gx');
    gx.end();
    const cfg = (await h.sh('/usr/sbin/sshd -T')).stdout;
    expect(cfg).toMatch(/^permitrootlogin no$/m);
    expect(cfg).toMatch(/^passwordauthentication no$/m);
    expect(cfg).toMatch(/^kbdinteractiveauthentication no$/m);
  });

  it('loads the firewall: agent ports only from the controller, nothing on :6060', async () => {
    const [a, b] = hosts as [TestHost, TestHost];
    await expectFirewalled(a);
    // Another host of the same network is not the controller: its connection is dropped.
    const fromB = await b.sh(`timeout 3 bash -c '</dev/tcp/${a.address}/8088' && echo open || echo closed`);
    expect(fromB.stdout.trim()).toBe('closed');
  });

  it('verified the host keys against known_hosts without adding any', () => {
    const entries = knownHosts.entries();
    expect(entries).toHaveLength(2);
    expect(entries.map((e) => `${e.keyType} ${e.key}`).sort()).toEqual(hosts.map((h) => h.hostPublicKey).sort());
  });
});

describe('a host whose key does not match', () => {
  it('is aborted with HOST_KEY_MISMATCH before any certificate, key or agent is sent', async () => {
    const impostor = await startTestHost({ authorizedKeys: [key.publicKey] });
    const expected = generateEd25519().publicKey.trim();
    knownHosts.add(impostor.address, 22, expected, 'pinned-by-test');
    const issuedBefore = ca.list().length;
    const [r] = await bootstrapHosts(
      [
        {
          name: 'h9',
          host: impostor.address,
          port: 22,
          user: 'root',
          privateKey: readFileSync(key.privateKeyPath),
          hostKey: { kind: 'known-hosts', knownHosts, acceptNew: true, fleet: FLEET },
          addresses: [impostor.address],
        },
      ],
      { ...options(impostor.controllerAddress), agentBundle: builtAgentBundle() },
    );
    expect(r?.ok === false && r.error.code).toBe('HOST_KEY_MISMATCH');
    expect(ca.list().length).toBe(issuedBefore);
    const left = await impostor.sh('id gx 2>&1; ls -d /opt/gaxx /var/lib/gaxx /etc/gaxx /tmp/gaxx-upload.* /home/gx 2>&1; true');
    expect(left.stdout).toMatch(/no such user/);
    expect(left.stdout).not.toMatch(/^\/(opt|var|etc|tmp|home)\//m);
    // The same host with its real key pinned is reachable: the refusal was about the key.
    const ok = await connectSsh(
      { host: impostor.address, port: 22, user: 'root', privateKey: readFileSync(key.privateKeyPath) },
      { kind: 'pinned', publicKey: impostor.hostPublicKey },
      { deadlineMs: 10_000 },
    );
    ok.end();
  });
});

describe('a cloud instance', () => {
  it('applies the user data (gx, pinned host key, TTL), then bootstraps with the pinned key alone', async () => {
    const hostKey = generateHostKey();
    const userData = cloudInitUserData({ operatorPublicKey: key.publicKey, hostKey, ttlSeconds: 1800 });
    const vm = await startTestHost({ userData });
    expect(vm.applied?.powerState?.mode).toBe('poweroff');
    expect(vm.hostPublicKey).toBe(hostKey.publicKey);
    const [r] = await bootstrapHosts(
      [
        {
          name: 'c1',
          host: vm.address,
          port: 22,
          user: 'root',
          privateKey: readFileSync(key.privateKeyPath),
          hostKey: { kind: 'pinned', publicKey: hostKey.publicKey },
          addresses: [vm.address],
        },
      ],
      { ...options(vm.controllerAddress), fleet: 'cloud', agentBundle: builtAgentBundle(), retryAuth: true },
    );
    expect(r?.ok ? 'ok' : `${r?.error.code}: ${r?.error.message}`).toBe('ok');
    const health = AgentClient.connect({ address: `${vm.address}:8088`, expect: { fleet: 'cloud', host: 'c1' } }, operator);
    expect(await health.health()).toBe('SERVING');
    health.close();
    // Root had key-only login for bootstrap; now it has none.
    expect((await vm.sh('/usr/sbin/sshd -T | grep -i ^permitrootlogin')).stdout.trim()).toBe('permitrootlogin no');
  });
});
