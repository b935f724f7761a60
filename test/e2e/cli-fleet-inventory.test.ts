// The SSH inventory path with the built CLI: `gaxx spawn --provider ssh --inventory FILE` over
// real sshd test hosts (own network and mount namespaces), host keys checked strictly against
// gaxx's known_hosts (under GAXX_HOME) and the user's (~/.ssh/known_hosts: a hashed `|1|` entry
// and a `[host]:port` entry), an unknown host refused without --accept-new before anything is
// sent; then `gaxx run --fleet F` runs as gx on every host, and `gaxx delete F` leaves the
// machines up but stops their agents, revokes the certificates and removes only the known_hosts
// entries gaxx added.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa } from '../../certs/index.js';
import { readFleet } from '../../cli/state.js';
import { generateEd25519, hashHostName } from '../../cli/ssh/index.js';
import { exitCodeFor } from '../../proto/index.js';
import { runGaxx } from '../helpers/cli.js';
import { startTestHost, stopAllTestHosts, type TestHost } from '../helpers/test-host.js';
import { agentUsers, expectHardened } from '../helpers/fleet-host-checks.js';

const LONG = 600_000;
let dir: string;
let home: string;
let userHome: string;
let rootKey: string;
let hosts: TestHost[];

const gaxx = (args: string[]) => runGaxx(args, { home, env: { HOME: userHome }, timeoutMs: LONG });
const ownKnownHosts = () => join(home, 'config', 'ssh', 'known_hosts');
const userKnownHosts = () => join(userHome, '.ssh', 'known_hosts');
const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');

function inventory(name: string, entries: { host: string; port?: number }[]): string {
  const file = join(dir, name);
  const lines = entries.map((e) => `  - host: ${e.host}\n${e.port ? `    port: ${e.port}\n` : ''}    user: root\n    key: root_ed25519\n`);
  writeFileSync(file, `hosts:\n${lines.join('')}`);
  return file;
}

/** What bootstrap leaves on a host; empty when nothing was created or uploaded. */
async function traces(h: TestHost): Promise<string> {
  const r = await h.sh('id gx >/dev/null 2>&1 && echo user-gx; ls -d /opt/gaxx /var/lib/gaxx /etc/gaxx /tmp/gaxx-upload.* /home/gx 2>/dev/null; true');
  return r.stdout.trim();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-e2e-inv-'));
  home = join(dir, 'gaxx-home');
  userHome = join(dir, 'user');
  mkdirSync(join(userHome, '.ssh'), { recursive: true, mode: 0o700 });
  const pair = generateEd25519('inventory');
  rootKey = join(dir, 'root_ed25519');
  writeFileSync(rootKey, pair.privateKey, { mode: 0o600 });
  chmodSync(rootKey, 0o600);
  const init = await gaxx(['init', '--name', 'alice']);
  expect(init.code, init.stderr).toBe(0);
  hosts = await Promise.all([0, 1, 2].map(() => startTestHost({ authorizedKeys: [pair.publicKey.trim()] })));
  // The second host is reached on :2222 (redirected to its sshd), so known_hosts names it [host]:2222.
  const nat = await hosts[1]?.sh(
    "nft -f - <<'EOF'\ntable ip e2enat {\n  chain prerouting { type nat hook prerouting priority -100; tcp dport 2222 redirect to :22; }\n}\nEOF",
  );
  expect(nat?.code, nat?.stderr).toBe(0);
  const [a, b] = hosts as [TestHost, TestHost];
  writeFileSync(userKnownHosts(), `# the user's own entries\n${hashHostName(a.address)} ${a.hostPublicKey}\n[${b.address}]:2222 ${b.hostPublicKey}\n`);
}, LONG);

afterAll(async () => {
  await stopAllTestHosts();
  rmSync(dir, { recursive: true, force: true });
});

describe('gaxx spawn --provider ssh --inventory FILE', () => {
  it('refuses a host missing from every known_hosts without --accept-new, before anything is issued or sent', async () => {
    const c = hosts[2] as TestHost;
    const r = await gaxx(['spawn', '--provider', 'ssh', '--inventory', inventory('unknown.yaml', [{ host: c.address }]), '--count', '1', '--fleet', 'c0']);
    expect(r.code, r.stderr).toBe(exitCodeFor('HOST_KEY_UNKNOWN'));
    expect(await traces(c)).toBe('');
    expect(
      FleetCa.open(join(home, 'config', 'ca'))
        .list()
        .filter((x) => x.identity.role === 'agent'),
    ).toEqual([]);
    expect(read(ownKnownHosts())).not.toContain(c.address);
    expect((await gaxx(['ls', 'c0'])).code).toBe(exitCodeFor('NOT_FOUND'));
  });

  it(
    'bootstraps with strict known_hosts, runs as gx on every host, and delete stops the agents but keeps the machines',
    async () => {
      const [a, b, c] = hosts as [TestHost, TestHost, TestHost];
      const userBefore = read(userKnownHosts());
      const file = inventory('hosts.yaml', [{ host: a.address }, { host: b.address, port: 2222 }, { host: c.address }]);
      const spawn = await gaxx(['spawn', '--provider', 'ssh', '--inventory', file, '--count', '3', '--fleet', 'inv', '--accept-new', '--json']);
      expect(spawn.code, spawn.stderr).toBe(0);
      expect(readFleet(join(home, 'state', 'fleets'), 'inv')?.hosts.map((h) => h.status)).toEqual(['ready', 'ready', 'ready']);
      // a and b were vouched for by the user's file (hashed, [host]:port); only c was trusted anew, in gaxx's own file.
      const own = read(ownKnownHosts());
      expect(own).toContain(`${c.address} ${c.hostPublicKey} gaxx-fleet=inv`);
      expect(own).not.toContain(a.address);
      expect(own).not.toContain(b.address);
      expect(read(userKnownHosts())).toBe(userBefore);
      for (const h of hosts) await expectHardened(h, rootKey);

      const run = await gaxx(['run', '--fleet', 'inv', '--json', '--', 'id', '-un']);
      expect(run.code, run.stderr).toBe(0);
      const tasks = run.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type?: string; host?: string; outcome: string; stdout?: string })
        .filter((l) => l.type === 'task');
      expect(tasks.map((t) => t.host).sort()).toEqual(hosts.map((h) => `${h.address}:8088`).sort());
      expect(tasks.map((t) => `${t.outcome} ${(t.stdout ?? '').trim()}`)).toEqual(['succeeded gx', 'succeeded gx', 'succeeded gx']);

      const agentCerts = () =>
        FleetCa.open(join(home, 'config', 'ca'))
          .list()
          .filter((x) => x.identity.role === 'agent' && x.identity.fleet === 'inv');
      const serials = agentCerts().map((x) => x.serial);
      expect(serials).toHaveLength(3);
      const del = await gaxx(['delete', 'inv', '--yes', '--json']);
      expect(del.code, del.stderr).toBe(0);
      const out = JSON.parse(del.stdout) as { agentsStopped: number; agentsNotStopped: unknown[]; revokedCerts: string[]; knownHostsRemoved: number };
      expect(out.agentsStopped, del.stdout).toBe(3);
      expect(out.agentsNotStopped).toEqual([]);
      expect(out.revokedCerts.sort()).toEqual(serials.sort());
      expect([...FleetCa.open(join(home, 'config', 'ca')).revoked()].sort()).toEqual(expect.arrayContaining(serials));
      expect(out.knownHostsRemoved).toBe(1);
      expect(read(ownKnownHosts())).not.toContain('gaxx-fleet=inv');
      expect(read(userKnownHosts())).toBe(userBefore);
      for (const h of hosts) {
        // The machine is still there (sshd answers), without a running agent or its key.
        expect((await h.sh('ss -ltnH')).stdout).toMatch(/:22\b/);
        expect(await agentUsers(h)).toBe('');
        expect((await h.sh('ls /var/lib/gaxx/certs')).stdout).not.toContain('key.pem');
      }
      expect((await gaxx(['ls', 'inv'])).code).toBe(exitCodeFor('NOT_FOUND'));
      expect((await gaxx(['run', '--fleet', 'inv', '--', 'true'])).code).toBe(exitCodeFor('NOT_FOUND'));
    },
    LONG,
  );
});
