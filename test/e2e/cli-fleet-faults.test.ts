// gaxx spawn against the fake Linode and Vultr APIs behind a fault proxy (test/helpers/fault-proxy.ts):
// a creation whose answer was lost after the provider acted. Instances answer on loopback where
// no SSH runs, so every host fails at the bootstrap step; what is checked is what the provider
// holds and what gaxx reports.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { runGaxx, type CliRun } from '../helpers/cli.js';
import type { FakeCloud } from '../helpers/fake-cloud.js';
import { FakeLinode } from '../helpers/fake-linode.js';
import { FakeVultr } from '../helpers/fake-vultr.js';
import { FaultProxy, type ProxiedRequest } from '../helpers/fault-proxy.js';

const TOKEN = 'e2e-0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978';
let home: string;
let fake: FakeCloud | undefined;
let proxy: FaultProxy | undefined;

const clouds = [
  { name: 'linode', make: () => new FakeLinode({ token: TOKEN }), env: (url: string) => ({ GAXX_LINODE_URL: url, LINODE_TOKEN: TOKEN }) },
  { name: 'vultr', make: () => new FakeVultr({ token: TOKEN }), env: (url: string) => ({ GAXX_VULTR_URL: url, VULTR_API_KEY: TOKEN }) },
] as const;

const isCreate = (r: ProxiedRequest): boolean => r.method === 'POST' && /\/instances$/.test(r.path);

async function world(cloud: (typeof clouds)[number]): Promise<{ fake: FakeCloud; proxy: FaultProxy; gaxx: (args: string[]) => Promise<CliRun> }> {
  const f = await cloud.make().start();
  fake = f;
  const p = await new FaultProxy(() => f.url).start();
  proxy = p;
  return { fake: f, proxy: p, gaxx: (args) => runGaxx(args, { home, env: cloud.env(p.url) }) };
}

beforeEach(async () => {
  home = mkdtempSync(join(tmpdir(), 'gaxx-e2e-fleet-faults-'));
  const init = await runGaxx(['init', '--name', 'alice'], { home });
  expect(init.code, init.stderr).toBe(0);
});

afterEach(async () => {
  await proxy?.stop();
  await fake?.stop();
  proxy = undefined;
  fake = undefined;
  rmSync(home, { recursive: true, force: true });
});

describe.each(clouds)('gaxx spawn --provider $name when a creation answer is lost', (cloud) => {
  it('adopts the instance the lost answer hid: one instance per host, every host reaches bootstrap, nothing left', async () => {
    const { fake, proxy, gaxx } = await world(cloud);
    let n = 0;
    proxy.rule = (r) => (isCreate(r) && n++ === 0 ? { kind: 'lose', status: 500 } : { kind: 'pass' });
    const r = await gaxx(['spawn', '--provider', cloud.name, '--count', '2', '--fleet', 'web', '--json', '--ssh-timeout', '1s']);
    // Not a refused label (Linode) nor a second instance (Vultr): both hosts fail only where SSH is missing.
    expect(r.code, r.stderr + r.stdout).toBe(exitCodeFor('DEADLINE_EXCEEDED'));
    const out = JSON.parse(r.stdout) as { failed: { host: string; code: string }[]; destroyed: string[] };
    expect(out.failed.map((f) => f.code)).toEqual(['DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED']);
    expect(fake.requests.filter((q) => q.method === 'POST' && q.status < 300).length).toBe(2);
    expect(proxy.actions(isCreate)).toEqual(['lose500', 'pass']);
    expect(out.destroyed.length).toBe(2);
    expect(fake.instances.size).toBe(0);
  });
});
