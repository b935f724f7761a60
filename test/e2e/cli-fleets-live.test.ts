// The whole fleet life with the built CLI: spawn -> run --fleet -> delete, on fake Linode and
// Vultr APIs (one test body for both) whose instances are real sshd test hosts (own network and
// mount namespaces) applying the cloud-init user data gaxx sent, and on the local provider.
// Asserts that the agent runs as gx and gx cannot sudo, that sshd refuses root and passwords,
// that the firewall is loaded and nothing listens on :6060, that the host key the host presents
// is the one gaxx recorded (and pinned) before the create, and that delete leaves no gaxx
// instance (foreign ones untouched), no known_hosts entry and no agent process behind.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAgentProcess } from '../../cli/providers/local-process.js';
import { readFleet } from '../../cli/state.js';
import { exitCodeFor } from '../../proto/index.js';
import { runGaxx, spawnGaxx } from '../helpers/cli.js';
import type { FakeCloud, InstanceBackend, SeenRequest } from '../helpers/fake-cloud.js';
import { FakeLinode } from '../helpers/fake-linode.js';
import { FakeVultr } from '../helpers/fake-vultr.js';
import { testHostBackend } from '../helpers/test-host-backend.js';
import { stopAllTestHosts, type TestHost } from '../helpers/test-host.js';
import { expectHardened } from '../helpers/fleet-host-checks.js';
import { freePort } from '../helpers/ports.js';

const TOKEN = 'e2e-live-0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978';
const LONG = 600_000;
let home: string;

const gaxx = (args: string[], env: Record<string, string> = {}) => runGaxx(args, { home, env, timeoutMs: LONG });

interface LsHost {
  name: string;
  address: string;
  agent?: string;
  metrics?: string;
  state: string;
}

async function agentsOf(fleet: string): Promise<LsHost[]> {
  const ls = await gaxx(['ls', fleet, '--json']);
  expect(ls.code, ls.stderr).toBe(0);
  return (JSON.parse(ls.stdout) as { hosts: LsHost[] }[])[0]?.hosts ?? [];
}

/** `gaxx run --fleet F -- id -un`: the agent each task ran on and the user it ran as. */
async function runFleetIdUn(fleet: string): Promise<{ host: string; user: string }[]> {
  const r = await gaxx(['run', '--fleet', fleet, '--json', '--', 'id', '-un']);
  expect(r.code, r.stderr).toBe(0);
  const tasks = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type?: string; host: string; outcome: string; stdout?: string })
    .filter((l) => l.type === 'task');
  expect(tasks.map((t) => t.outcome)).toEqual(tasks.map(() => 'succeeded'));
  return tasks.map((t) => ({ host: t.host, user: (t.stdout ?? '').trim() }));
}

/** `gaxx run --agent ... -- id -un`: the user each task ran as. */
async function runIdUn(agents: string[]): Promise<string[]> {
  const r = await gaxx(['run', '--agent', agents.join(','), '--json', '--', 'id', '-un']);
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type?: string; outcome: string; stdout?: string })
    .filter((l) => l.type === 'task');
  expect(lines.map((l) => l.outcome)).toEqual(agents.map(() => 'succeeded'));
  return lines.map((l) => (l.stdout ?? '').trim());
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'gaxx-e2e-live-'));
  const init = await gaxx(['init', '--name', 'alice']);
  expect(init.code, init.stderr).toBe(0);
}, LONG);

afterAll(async () => {
  // A local fleet a failed test left behind: its agents are processes of this machine.
  const ls = await gaxx(['ls', '--json']);
  if (ls.code === 0)
    for (const f of JSON.parse(ls.stdout) as { fleet: string; provider: string }[]) if (f.provider === 'local') await gaxx(['delete', f.fleet, '--yes']);
  await stopAllTestHosts();
  rmSync(home, { recursive: true, force: true });
});

interface CloudCase {
  name: 'linode' | 'vultr';
  make: (backend: InstanceBackend) => FakeCloud;
  env: (fake: FakeCloud) => Record<string, string>;
  /** How the fake walked pages: a request that asked for a page after the first. */
  paged: (q: SeenRequest) => boolean;
}

// Pages of one instance, so even two hosts walk the provider's pagination (Linode page/pages, Vultr's meta.links.next cursor).
const CLOUDS: CloudCase[] = [
  {
    name: 'linode',
    make: (backend) => new FakeLinode({ token: TOKEN, backend, pageLimit: 1 }),
    env: (fake) => ({ GAXX_LINODE_URL: fake.url, LINODE_TOKEN: TOKEN }),
    paged: (q) => q.method === 'GET' && q.path === '/v4/linode/instances' && /[?&]page=2\b/.test(q.query),
  },
  {
    name: 'vultr',
    make: (backend) => new FakeVultr({ token: TOKEN, backend, pageLimit: 1 }),
    env: (fake) => ({ GAXX_VULTR_URL: fake.url, VULTR_API_KEY: TOKEN }),
    paged: (q) => q.method === 'GET' && q.path === '/v2/instances' && /[?&]cursor=[^&]+/.test(q.query),
  },
];

describe.each(CLOUDS)('gaxx spawn -> run --fleet -> delete on a fake $name API with real test hosts', ({ name, make, env: envOf, paged }) => {
  const fleet = `${name}1`;
  const { backend, hosts } = testHostBackend();
  let fake: FakeCloud;
  const env = () => envOf(fake);

  beforeAll(async () => {
    fake = await make(backend).start();
  });
  afterAll(async () => {
    await fake.stop();
  });

  it(
    'bootstraps with the pinned host key, hardens the hosts, runs as gx on every host, and delete leaves nothing of gaxx',
    async () => {
      // Not this fleet's: an untagged instance named as gaxx names hosts (Linode labels are unique,
      // so not one of this spawn's names), and one of a fleet with a similar name. Never touched.
      const foreign = [fake.seed({ label: `gaxx-${fleet}-2`, tags: [] }), fake.seed({ label: `gaxx-${fleet}x-0`, tags: [`gaxx-fleet:${fleet}x`] })];
      const spawn = await gaxx(['spawn', '--provider', name, '--count', '2', '--fleet', fleet, '--json'], env());
      expect(spawn.code, spawn.stderr + spawn.stdout).toBe(0);
      const state = readFleet(join(home, 'state', 'fleets'), fleet);
      expect(state?.hosts.map((h) => h.status)).toEqual(['ready', 'ready']);
      const mine = fake.tagged(`gaxx-fleet:${fleet}`);
      expect(mine.map((i) => i.label).sort()).toEqual([`gaxx-${fleet}-0`, `gaxx-${fleet}-1`]);
      // The key each host presents is the one recorded before its create (only the public half is kept).
      for (const inst of mine) {
        const rec = state?.hosts.find((h) => h.id === inst.id);
        const host = hosts.get(inst.id) as TestHost;
        expect(rec?.hostKey).toBe(host.hostPublicKey);
        expect(inst.userData).toContain(host.hostPublicKey.split(' ')[1]);
        expect(JSON.stringify(state)).not.toContain('PRIVATE KEY');
        // Root had gaxx's key through the user data: refused now by sshd's policy.
        await expectHardened(host, join(home, 'config', 'ssh', 'id_ed25519'));
      }
      const knownHosts = join(home, 'config', 'ssh', 'known_hosts');
      expect(readFileSync(knownHosts, 'utf8')).toContain(`gaxx-fleet=${fleet}`);

      const listed = await agentsOf(fleet);
      expect(listed.map((h) => h.agent)).toEqual(listed.map((h) => `${h.address}:8088`));
      const ran = await runFleetIdUn(fleet);
      expect(ran.map((t) => t.host).sort()).toEqual(listed.map((h) => h.agent).sort());
      expect(ran.map((t) => t.user)).toEqual(['gx', 'gx']);
      // gaxx ssh: OpenSSH with gaxx's key and its known_hosts only, as gx.
      const ssh = await gaxx(['ssh', `${fleet}/1`, '--', 'id', '-un'], env());
      expect(ssh.code, ssh.stderr).toBe(0);
      expect(ssh.stdout.trim()).toBe('gx');
      expect((await gaxx(['ssh', `${fleet}/9`, '--', 'true'], env())).code).toBe(exitCodeFor('NOT_FOUND'));

      const del = await gaxx(['delete', fleet, '--yes', '--json'], env());
      expect(del.code, del.stderr).toBe(0);
      const out = JSON.parse(del.stdout) as { destroyed: number; revokedCerts: string[] };
      expect(out.destroyed).toBe(2);
      expect(out.revokedCerts).toHaveLength(2);
      expect(fake.tagged(`gaxx-fleet:${fleet}`)).toEqual([]);
      expect([...fake.instances.keys()].sort()).toEqual(foreign.map((f) => f.id).sort());
      expect(fake.requests.some(paged)).toBe(true);
      expect(existsSync(knownHosts) ? readFileSync(knownHosts, 'utf8') : '').not.toContain(`gaxx-fleet=${fleet}`);
      expect((await gaxx(['ls', fleet])).code).not.toBe(0);
      expect((await gaxx(['run', '--fleet', fleet, '--', 'true'])).code).toBe(exitCodeFor('NOT_FOUND'));
      await fake.settled();
      expect(hosts.size).toBe(0);
    },
    LONG,
  );
});

describe('gaxx spawn -> run -> delete on the local provider', () => {
  it(
    'starts certified agents without SSH, runs on them, and delete stops them',
    async () => {
      const env = { GAXX_AGENT_PORT: String(await freePort()) };
      const spawn = await gaxx(['spawn', '--provider', 'local', '--count', '2', '--fleet', 'l1', '--json'], env);
      expect(spawn.code, spawn.stderr).toBe(0);
      const listed = await agentsOf('l1');
      expect(listed.map((h) => h.state)).toEqual(['ready', 'ready']);
      const records = ['gaxx-l1-0', 'gaxx-l1-1'].map(
        (l) => JSON.parse(readFileSync(join(home, 'state', 'local', `l1-${l}.json`), 'utf8')) as { pid: number; bundle: string },
      );
      for (const r of records) expect(isAgentProcess(r.pid, r.bundle)).toBe(true);
      const users = await runIdUn(listed.map((h) => h.agent as string));
      expect(users.every((u) => u !== '' && u !== 'root')).toBe(true);
      // Each agent serves its metrics on its own address, and the fleet says where: the dashboard
      // (`gaxx ui --fleet`) scrapes every one of them.
      for (const h of listed) expect(h.metrics).toMatch(new RegExp(`^${h.address.replaceAll('.', '\\.')}:\\d+$`));
      const ui = spawnGaxx(['ui', '--fleet', 'l1', '--listen', '127.0.0.1:0', '--interval', '300ms', '--json'], { home, env });
      try {
        const { url } = JSON.parse(await ui.line('stdout', () => true)) as { url: string };
        const up = async (): Promise<string[]> => {
          const text = await (await fetch(`${new URL(url).origin}/metrics`)).text();
          return [...text.matchAll(/^up\{[^}]*host="([^"]+)"[^}]*\} 1$/gm)].map((m) => m[1] as string).sort();
        };
        await expect.poll(up, { timeout: 60_000 }).toEqual(['gaxx-l1-0', 'gaxx-l1-1']);
      } finally {
        ui.kill('SIGINT');
        expect((await ui.done).code).toBe(0);
      }

      // An agent that died is not ready: --fill replaces it (and reports it), the other stays.
      const dead = records[1] as { pid: number; bundle: string };
      process.kill(dead.pid, 'SIGKILL');
      await expect.poll(() => isAgentProcess(dead.pid, dead.bundle), { timeout: 30_000 }).toBe(false);
      // ls shows it as the provider reports it (its agent process is gone), as --fill sees it.
      expect((await agentsOf('l1')).map((h) => h.state)).toEqual(['ready', 'stopped']);
      const human = await gaxx(['ls', 'l1'], env);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).toMatch(/^l1: local, 1\/2 ready/m);
      const fill = await gaxx(['spawn', '--fleet', 'l1', '--fill', '--json'], env);
      expect(fill.code, fill.stderr).toBe(0);
      expect(fill.stderr).toMatch(/gaxx-l1-1: its instance l1-gaxx-l1-1 is stopped; replacing it/);
      expect((JSON.parse(fill.stdout) as { ready: unknown[] }).ready).toHaveLength(2);
      const refilled = JSON.parse(readFileSync(join(home, 'state', 'local', 'l1-gaxx-l1-1.json'), 'utf8')) as { pid: number; bundle: string };
      expect(refilled.pid).not.toBe(dead.pid);
      expect(isAgentProcess(refilled.pid, refilled.bundle)).toBe(true);
      expect(isAgentProcess((records[0] as { pid: number; bundle: string }).pid, (records[0] as { bundle: string }).bundle)).toBe(true);
      const relisted = await agentsOf('l1');
      expect(relisted.map((h) => h.state)).toEqual(['ready', 'ready']);
      expect((await runFleetIdUn('l1')).map((t) => t.host).sort()).toEqual(relisted.map((h) => h.agent as string).sort());

      const del = await gaxx(['delete', 'l1', '--yes', '--json'], env);
      expect(del.code, del.stderr).toBe(0);
      expect((JSON.parse(del.stdout) as { destroyed: number }).destroyed).toBe(2);
      // A stopped agent may linger as a zombie until its new parent reaps it: it no longer runs the agent.
      for (const r of [...records, refilled]) expect(isAgentProcess(r.pid, r.bundle)).toBe(false);
      expect(existsSync(join(home, 'state', 'local', 'l1-gaxx-l1-0.json'))).toBe(false);
    },
    LONG,
  );
});
