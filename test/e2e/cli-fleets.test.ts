// gaxx spawn / ls / delete with the built CLI against the fake Linode and Vultr APIs on loopback,
// up to the bootstrap step: instances are created with the fleet's tag and cloud-init user data
// carrying a pinned host key, and when hosts do not become ready (no SSH answers, no address, provider failures)
// nothing is left behind. Delete destroys only tagged instances, including ones the state lost.
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { FleetStore } from '../../cli/state.js';
import { runGaxx, type CliRun } from '../helpers/cli.js';
import type { FakeCloud, InstanceBackend } from '../helpers/fake-cloud.js';
import { FakeLinode } from '../helpers/fake-linode.js';
import { FakeVultr } from '../helpers/fake-vultr.js';

const TOKEN = 'e2e-0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978';
let home: string;
let fake: FakeCloud | undefined;

interface Created {
  label: string;
  tags: string[];
  userData: string | undefined;
}

/** A backend that records what each instance was created with (and answers on loopback). */
function recorder(): { backend: InstanceBackend; created: Created[] } {
  const created: Created[] = [];
  return {
    created,
    backend: {
      onCreate: async (i) => (created.push({ label: i.label, tags: i.tags, userData: i.userData }), { ipv4: '127.0.0.1' }),
      onDelete: async () => undefined,
    },
  };
}

const gaxx = (args: string[], env: Record<string, string> = {}): Promise<CliRun> => runGaxx(args, { home, env });

const linodeEnv = () => ({ GAXX_LINODE_URL: fake?.url ?? '', LINODE_TOKEN: TOKEN });
const vultrEnv = () => ({ GAXX_VULTR_URL: fake?.url ?? '', VULTR_API_KEY: TOKEN });

beforeEach(async () => {
  home = mkdtempSync(join(tmpdir(), 'gaxx-e2e-fleets-'));
  const init = await gaxx(['init', '--name', 'alice']);
  expect(init.code, init.stderr).toBe(0);
});

afterEach(async () => {
  await fake?.stop();
  fake = undefined;
  rmSync(home, { recursive: true, force: true });
});

describe.each([
  { name: 'linode', make: (b: InstanceBackend) => new FakeLinode({ token: TOKEN, backend: b }), env: linodeEnv },
  { name: 'vultr', make: (b: InstanceBackend) => new FakeVultr({ token: TOKEN, backend: b }), env: vultrEnv },
])('gaxx spawn --provider $name', ({ name, make, env }) => {
  it('creates tagged instances with cloud-init user data, reaches the bootstrap step, and leaves nothing behind when it fails', async () => {
    const rec = recorder();
    fake = await make(rec.backend).start();
    const r = await gaxx(['spawn', '--provider', name, '--count', '3', '--fleet', 'web', '--json', '--ssh-timeout', '1s'], env());
    expect(r.code, r.stderr + r.stdout).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
    const out = JSON.parse(r.stdout) as { failed: { host: string; code: string }[]; destroyed: string[] };
    expect(out.failed.map((f) => f.code)).toEqual(['DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED']);
    expect(out.destroyed.length).toBe(3);
    expect(rec.created.map((c) => c.label).sort()).toEqual(['gaxx-web-0', 'gaxx-web-1', 'gaxx-web-2']);
    for (const c of rec.created) {
      expect(c.tags).toEqual(['gaxx-fleet:web']);
      // The pinned host key travels in the user data; nothing answers SSH at the fake's address.
      expect(c.userData).toMatch(/^#cloud-config\n/);
      expect(c.userData).toMatch(/ed25519_public: ssh-ed25519 [A-Za-z0-9+/]+/);
    }
    expect(fake.instances.size).toBe(0);
    const ls = await gaxx(['ls', '--json']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(JSON.parse(ls.stdout)).toEqual([]);
  });

  it('a bad token is UNAUTHENTICATED and creates nothing; the right token gets through', async () => {
    fake = await make(recorder().backend).start();
    const bad = await gaxx(['spawn', '--provider', name, '--count', '1', '--fleet', 'web'], { ...env(), LINODE_TOKEN: 'nope', VULTR_API_KEY: 'nope' });
    expect(bad.code, bad.stderr).toBe(exitCodeFor('UNAUTHENTICATED'));
    expect(fake.requests.some((q) => q.method === 'POST')).toBe(false);
    const good = await gaxx(['spawn', '--provider', name, '--count', '1', '--fleet', 'web', '--ssh-timeout', '1s'], env());
    expect(good.code, good.stderr).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
    expect(fake.requests.some((q) => q.method === 'POST' && q.status < 300)).toBe(true);
    expect(fake.instances.size).toBe(0);
  });

  it('rides out a 429 storm and 500s; malformed JSON stops the spawn before anything is created', async () => {
    const rec = recorder();
    fake = await make(rec.backend).start();
    fake.faults.storm429 = 2;
    fake.faults.fail500 = 2;
    const r = await gaxx(['spawn', '--provider', name, '--count', '2', '--fleet', 'web', '--ssh-timeout', '1s'], env());
    expect(r.code, r.stderr).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
    expect(rec.created.length).toBe(2);
    expect(fake.requests.filter((q) => q.status === 429 || q.status === 500).length).toBe(4);
    expect(fake.instances.size).toBe(0);
    fake.faults.malformedJson = 1;
    const m = await gaxx(['spawn', '--provider', name, '--count', '2', '--fleet', 'api', '--ssh-timeout', '1s'], env());
    expect(m.code, m.stderr).toBe(exitCodeFor('UNAVAILABLE'));
    expect(rec.created.length).toBe(2);
  });

  it('an instance that never gets an address is reported DEADLINE_EXCEEDED and destroyed', async () => {
    fake = await make(recorder().backend).start();
    fake.faults.neverReady = true;
    const r = await gaxx(['spawn', '--provider', name, '--count', '1', '--fleet', 'web', '--ready-timeout', '1s', '--json'], env());
    expect(r.code, r.stderr).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
    expect((JSON.parse(r.stdout) as { failed: { code: string }[] }).failed[0]?.code).toBe('DEADLINE_EXCEEDED');
    expect(fake.instances.size).toBe(0);
  });
});

describe('gaxx spawn before gaxx init', () => {
  it('is refused before any provider request: no CA (NOT_FOUND), an operator certificate of another CA (CERT_INVALID); after init it creates', async () => {
    rmSync(home, { recursive: true, force: true });
    home = mkdtempSync(join(tmpdir(), 'gaxx-e2e-fleets-'));
    fake = await new FakeLinode({ token: TOKEN, backend: recorder().backend }).start();
    const args = ['spawn', '--provider', 'linode', '--count', '1', '--fleet', 'web', '--ssh-timeout', '1s'];
    const none = await gaxx(args, linodeEnv());
    expect(none.code, none.stderr).toBe(exitCodeFor('NOT_FOUND'));
    // The one line names the command that fixes it.
    expect(none.stderr).toContain('gaxx init');
    expect(fake.requests).toEqual([]);
    expect(existsSync(join(home, 'state', 'fleets', 'web.json'))).toBe(false);

    expect((await gaxx(['init', '--name', 'alice'])).code).toBe(0);
    const mine = home;
    home = mkdtempSync(join(tmpdir(), 'gaxx-e2e-fleets-'));
    expect((await gaxx(['init', '--name', 'mallory'])).code).toBe(0);
    const foreign = join(home, 'config', 'operator');
    home = mine;
    for (const f of ['cert.pem', 'key.pem']) copyFileSync(join(foreign, f), join(home, 'config', 'operator', f));
    rmSync(join(foreign, '..', '..'), { recursive: true, force: true });
    const invalid = await gaxx(args, linodeEnv());
    expect(invalid.code, invalid.stderr).toBe(exitCodeFor('CERT_INVALID'));
    expect(fake.requests).toEqual([]);

    rmSync(join(home, 'config'), { recursive: true, force: true });
    expect((await gaxx(['init', '--name', 'alice'])).code).toBe(0);
    const good = await gaxx(args, linodeEnv());
    expect(good.code, good.stderr).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
    expect(fake.requests.some((q) => q.method === 'POST' && q.status < 300)).toBe(true);
    expect(fake.instances.size).toBe(0);
  });
});

describe('gaxx delete and ls', () => {
  it('destroys only tagged instances, also those the state lost; never an untagged or foreign one', async () => {
    fake = await new FakeLinode({ token: TOKEN }).start();
    const lost = [fake.seed({ label: 'gaxx-web-0', tags: ['gaxx-fleet:web'] }), fake.seed({ label: 'whatever', tags: ['gaxx-fleet:web', 'x'] })];
    const untagged = fake.seed({ label: 'gaxx-web-1', tags: [] });
    const foreign = fake.seed({ label: 'gaxx-web-2', tags: ['gaxx-fleet:web2'] });
    const dry = await gaxx(['delete', 'web', '--provider', 'linode', '--dry-run', '--json'], linodeEnv());
    expect(dry.code, dry.stderr).toBe(0);
    expect((JSON.parse(dry.stdout) as { wouldDestroy: { id: string }[] }).wouldDestroy.map((w) => w.id).sort()).toEqual(lost.map((l) => l.id).sort());
    expect(fake.instances.size).toBe(4);
    const refused = await gaxx(['delete', 'web', '--provider', 'linode'], linodeEnv());
    expect(refused.code, refused.stderr).toBe(exitCodeFor('USAGE'));
    expect(fake.instances.size).toBe(4);
    const r = await gaxx(['delete', 'web', '--provider', 'linode', '--yes', '--json'], linodeEnv());
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { destroyed: number }).destroyed).toBe(2);
    expect([...fake.instances.keys()].sort()).toEqual([untagged.id, foreign.id].sort());
  });

  it('an interrupted spawn (intent recorded, instance created) shows in ls and is deleted from its state', async () => {
    fake = await new FakeLinode({ token: TOKEN }).start();
    const made = fake.seed({ label: 'gaxx-web-0', tags: ['gaxx-fleet:web'] });
    const store = FleetStore.create(join(home, 'state', 'fleets'), { fleet: 'web', provider: 'linode', count: 2, minCount: 2, settings: {} });
    await store.setHost(0, { status: 'intent' });
    await store.setHost(1, { status: 'created', id: '424242', region: 'us-east', pricePerHour: 0.0075 });
    const ls = await gaxx(['ls', 'web', '--json']);
    expect(ls.code, ls.stderr).toBe(0);
    const fleets = JSON.parse(ls.stdout) as { fleet: string; hosts: { name: string; state: string }[] }[];
    expect(fleets[0]?.hosts.map((h) => h.state)).toEqual(['intent', 'created']);
    const human = await gaxx(['ls']);
    expect(human.stdout).toContain('gaxx-web-1');
    const r = await gaxx(['delete', 'web', '--yes', '--json'], linodeEnv());
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { destroyed: number; alreadyGone: number }).alreadyGone).toBe(1);
    expect(fake.instances.has(made.id)).toBe(false);
    expect((await gaxx(['ls', 'web'])).code).toBe(exitCodeFor('NOT_FOUND'));
  });

  it('refuses a secrets.env readable by others (INSECURE_FILE_MODE), then works once it is 0600', async () => {
    fake = await new FakeLinode({ token: TOKEN }).start();
    mkdirSync(join(home, 'config'), { recursive: true });
    const secrets = join(home, 'config', 'secrets.env');
    writeFileSync(secrets, `# provider tokens\nLINODE_TOKEN="${TOKEN}"\n`, { mode: 0o644 });
    chmodSync(secrets, 0o644);
    const env = { GAXX_LINODE_URL: fake.url };
    const bad = await gaxx(['delete', 'web', '--provider', 'linode', '--dry-run'], env);
    expect(bad.code, bad.stderr).toBe(exitCodeFor('INSECURE_FILE_MODE'));
    expect(fake.requests.length).toBe(0);
    chmodSync(secrets, 0o600);
    const good = await gaxx(['delete', 'web', '--provider', 'linode', '--dry-run'], env);
    expect(good.code, good.stderr).toBe(0);
    expect(fake.requests.length).toBe(1);
  });
});
