// `gaxx spawn --provider ssh --inventory FILE` and `gaxx delete` with the built CLI, on loopback
// ports where nothing listens: every inventory entry (its key file included) and --count are
// checked before anything is recorded, and inventory hosts are reported released, never destroyed.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateEd25519 } from '../../cli/ssh/index.js';
import { FleetStore, readFleet } from '../../cli/state.js';
import { exitCodeFor } from '../../proto/index.js';
import { runGaxx } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

let dir: string;
let home: string;
let key: string;
let closed: number;

const gaxx = (args: string[]) => runGaxx(args, { home, env: { HOME: join(dir, 'user') }, timeoutMs: 120_000 });
const fleetsDir = () => join(home, 'state', 'fleets');

function inventory(name: string, entries: { port: number; key?: string; user?: string }[]): string {
  const file = join(dir, name);
  const lines = entries.map((e) => `  - host: 127.0.0.1\n    port: ${e.port}\n    user: ${e.user ?? 'root'}\n${e.key ? `    key: ${e.key}\n` : ''}`);
  writeFileSync(file, `hosts:\n${lines.join('')}`);
  return file;
}

function errorOf(stdout: string): { code: string; message: string } {
  return (JSON.parse(stdout) as { error: { code: string; message: string } }).error;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-e2e-invchk-'));
  home = join(dir, 'gaxx-home');
  mkdirSync(join(dir, 'user'));
  const pair = generateEd25519('inventory');
  key = join(dir, 'id_ed25519');
  writeFileSync(key, pair.privateKey, { mode: 0o600 });
  chmodSync(key, 0o600);
  writeFileSync(`${key}.pub`, pair.publicKey);
  closed = await freePort();
  const init = await gaxx(['init', '--name', 'alice']);
  expect(init.code, init.stderr).toBe(0);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('ssh inventory checks', () => {
  it('refuses an entry whose key is missing, a directory or a public key, naming the entry, before anything is recorded', async () => {
    const file = inventory('bad-keys.yaml', [
      { port: closed, key },
      { port: closed + 1, key: join(dir, 'nonexistent-key') },
      { port: closed + 2, key: dir },
      { port: closed + 3, key: `${key}.pub` },
    ]);
    const r = await gaxx(['spawn', '--provider', 'ssh', '--inventory', file, '--count', '1', '--fleet', 'k1', '--json']);
    expect(r.code, r.stderr).toBe(exitCodeFor('CONFIG_INVALID'));
    const e = errorOf(r.stdout);
    expect(e.code).toBe('CONFIG_INVALID');
    for (const i of [1, 2, 3]) expect(e.message).toContain(`hosts.${i}`);
    expect(e.message).not.toContain('hosts.0');
    expect(readFleet(fleetsDir(), 'k1')).toBeUndefined();
  });

  it('refuses a key readable by others (INSECURE_FILE_MODE)', async () => {
    const open = join(dir, 'open_key');
    writeFileSync(open, generateEd25519('x').privateKey);
    chmodSync(open, 0o644);
    const r = await gaxx(['spawn', '--provider', 'ssh', '--inventory', inventory('open.yaml', [{ port: closed, key: open }]), '--count', '1', '--fleet', 'k2']);
    expect(r.code, r.stderr).toBe(exitCodeFor('INSECURE_FILE_MODE'));
    expect(readFleet(fleetsDir(), 'k2')).toBeUndefined();
  });

  it('refuses --count above the inventory size up front (USAGE), and a directory as the inventory (CONFIG_INVALID)', async () => {
    const file = inventory('one.yaml', [{ port: closed, key }]);
    const r = await gaxx(['spawn', '--provider', 'ssh', '--inventory', file, '--count', '5', '--fleet', 'k3', '--ssh-timeout', '10m', '--json']);
    expect(r.code, r.stderr).toBe(exitCodeFor('USAGE'));
    expect(errorOf(r.stdout).code).toBe('USAGE');
    expect(readFleet(fleetsDir(), 'k3')).toBeUndefined();
    const d = await gaxx(['spawn', '--provider', 'ssh', '--inventory', dir, '--count', '1', '--fleet', 'k3', '--json']);
    expect(d.code, d.stderr).toBe(exitCodeFor('CONFIG_INVALID'));
  });

  it('a host that did not become ready is released, not destroyed', async () => {
    const file = inventory('closed.yaml', [{ port: closed, key }]);
    const r = await gaxx(['spawn', '--provider', 'ssh', '--inventory', file, '--count', '1', '--fleet', 'k4', '--ssh-timeout', '1s', '--accept-new', '--json']);
    expect(r.code, r.stderr).not.toBe(0);
    const out = JSON.parse(r.stdout) as { destroyed: string[]; released: string[] };
    expect(out.destroyed).toEqual([]);
    expect(out.released).toEqual([`127.0.0.1:${closed}`]);
  });

  it('delete of an inventory fleet releases its hosts: none is reported destroyed, in --dry-run and for real', async () => {
    const file = inventory('kept.yaml', [{ port: closed, key }]);
    const store = FleetStore.create(fleetsDir(), { fleet: 'k5', provider: 'ssh', count: 1, minCount: 1, settings: { inventory: file } });
    // As an interrupted spawn leaves it: the host handed out, never bootstrapped.
    await store.setHost(0, { status: 'created', id: `127.0.0.1:${closed}` });
    const dry = await gaxx(['delete', 'k5', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    const planned = JSON.parse(dry.stdout) as { wouldDestroy: unknown[]; wouldRelease: { id: string }[] };
    expect(planned.wouldDestroy).toEqual([]);
    expect(planned.wouldRelease.map((w) => w.id)).toEqual([`127.0.0.1:${closed}`]);
    const human = await gaxx(['delete', 'k5', '--dry-run']);
    expect(human.stdout).not.toMatch(/destroy \d/);
    const del = await gaxx(['delete', 'k5', '--yes', '--json']);
    expect(del.code, del.stderr).toBe(0);
    expect(JSON.parse(del.stdout)).toMatchObject({ destroyed: 0, released: 1 });
    expect(readFleet(fleetsDir(), 'k5')).toBeUndefined();
  });
});
