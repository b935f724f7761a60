// The whole fleet life with the built CLI: spawn -> run -> delete, on a fake Linode API whose
// instances are real sshd test hosts (own network and mount namespaces) applying the cloud-init
// user data gaxx sent, and on the local provider. Asserts that the agent runs as gx, that the
// host key the host presents is the one gaxx recorded (and pinned) before the create, and that
// delete leaves no instance, no known_hosts entry and no agent process behind.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAgentProcess } from '../../cli/providers/local-process.js';
import { readFleet } from '../../cli/state.js';
import { exitCodeFor } from '../../proto/index.js';
import { runGaxx } from '../helpers/cli.js';
import type { InstanceBackend } from '../helpers/fake-cloud.js';
import { FakeLinode } from '../helpers/fake-linode.js';
import { startTestHost, stopAllTestHosts, type TestHost } from '../helpers/test-host.js';

const TOKEN = 'e2e-live-0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978';
const LONG = 600_000;
let home: string;

const gaxx = (args: string[], env: Record<string, string> = {}) => runGaxx(args, { home, env, timeoutMs: LONG });

interface LsHost {
  name: string;
  address: string;
  agent?: string;
  state: string;
}

async function agentsOf(fleet: string): Promise<LsHost[]> {
  const ls = await gaxx(['ls', fleet, '--json']);
  expect(ls.code, ls.stderr).toBe(0);
  return (JSON.parse(ls.stdout) as { hosts: LsHost[] }[])[0]?.hosts ?? [];
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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'gaxx-e2e-live-'));
  const init = await gaxx(['init', '--name', 'alice']);
  expect(init.code, init.stderr).toBe(0);
}, LONG);

afterAll(async () => {
  await stopAllTestHosts();
  rmSync(home, { recursive: true, force: true });
});

describe('gaxx spawn -> run -> delete on a fake Linode with real test hosts', () => {
  const hosts = new Map<string, TestHost>();
  const backend: InstanceBackend = {
    onCreate: async (i) => {
      const h = await startTestHost({ userData: i.userData ?? '' });
      hosts.set(i.id, h);
      return { ipv4: h.address };
    },
    onDelete: async (id) => {
      await hosts.get(id)?.stop();
      hosts.delete(id);
    },
  };
  let fake: FakeLinode;
  const env = () => ({ GAXX_LINODE_URL: fake.url, LINODE_TOKEN: TOKEN });

  beforeAll(async () => {
    fake = await new FakeLinode({ token: TOKEN, backend }).start();
  });
  afterAll(async () => {
    await fake.stop();
  });

  it(
    'bootstraps with the pinned host key, runs as gx, and delete leaves nothing',
    async () => {
      const spawn = await gaxx(['spawn', '--provider', 'linode', '--count', '2', '--fleet', 'f1', '--json'], env());
      expect(spawn.code, spawn.stderr).toBe(0);
      const state = readFleet(join(home, 'state', 'fleets'), 'f1');
      expect(state?.hosts.map((h) => h.status)).toEqual(['ready', 'ready']);
      // The key each host presents is the one recorded before its create (only the public half is kept).
      for (const inst of fake.instances.values()) {
        const rec = state?.hosts.find((h) => h.id === inst.id);
        const host = hosts.get(inst.id) as TestHost;
        expect(rec?.hostKey).toBe(host.hostPublicKey);
        expect(inst.userData).toContain(host.hostPublicKey.split(' ')[1]);
        expect(JSON.stringify(state)).not.toContain('PRIVATE KEY');
        const ps = await host.sh("ps -eo user:16,args | grep '[g]axx-agent.mjs' | grep -v 'sh /opt' | awk '{print $1}' | sort -u");
        expect(ps.stdout.trim()).toBe('gx');
      }
      const knownHosts = join(home, 'config', 'ssh', 'known_hosts');
      expect(readFileSync(knownHosts, 'utf8')).toContain('gaxx-fleet=f1');

      const listed = await agentsOf('f1');
      expect(listed.map((h) => h.agent)).toEqual(listed.map((h) => `${h.address}:8088`));
      const users = await runIdUn(listed.map((h) => h.agent as string));
      expect(users.every((u) => u !== '' && u !== 'root')).toBe(true);
      // gaxx ssh: OpenSSH with gaxx's key and its known_hosts only, as gx.
      const ssh = await gaxx(['ssh', 'f1/1', '--', 'id', '-un'], env());
      expect(ssh.code, ssh.stderr).toBe(0);
      expect(ssh.stdout.trim()).toBe('gx');
      expect((await gaxx(['ssh', 'f1/9', '--', 'true'], env())).code).toBe(exitCodeFor('NOT_FOUND'));

      const del = await gaxx(['delete', 'f1', '--yes', '--json'], env());
      expect(del.code, del.stderr).toBe(0);
      expect((JSON.parse(del.stdout) as { destroyed: number; knownHostsRemoved: number }).destroyed).toBe(2);
      expect(fake.instances.size).toBe(0);
      expect(existsSync(knownHosts) ? readFileSync(knownHosts, 'utf8') : '').not.toContain('gaxx-fleet=f1');
      expect((await gaxx(['ls', 'f1'])).code).not.toBe(0);
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

      const del = await gaxx(['delete', 'l1', '--yes', '--json'], env);
      expect(del.code, del.stderr).toBe(0);
      expect((JSON.parse(del.stdout) as { destroyed: number }).destroyed).toBe(2);
      // A stopped agent may linger as a zombie until its new parent reaps it: it no longer runs the agent.
      for (const r of records) expect(isAgentProcess(r.pid, r.bundle)).toBe(false);
      expect(existsSync(join(home, 'state', 'local', 'l1-gaxx-l1-0.json'))).toBe(false);
    },
    LONG,
  );
});
