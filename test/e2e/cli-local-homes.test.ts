// Local fleets of two installations (two GAXX_HOMEs) spawned at once, on the same agent port:
// their agents share this user's loopback, so the addresses are claimed in one place for both
// (the user's run dir), and each fleet gets addresses of its own; delete gives them back.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installationKey, userRunDir } from '../../cli/providers/local-files.js';
import { runGaxx } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

const LONG = 300_000;
const homes: string[] = [];
const gaxx = (home: string, args: string[], env: Record<string, string> = {}) => runGaxx(args, { home, env, timeoutMs: LONG });

/** The address claims (slot files) some installation of `homes` holds. */
function claimsOf(list: string[]): string[] {
  const keys = list.map((h) => `${installationKey(join(h, 'state', 'local'))}/`);
  const dir = join(userRunDir(), 'slots');
  return readdirSync(dir)
    .filter((f) => /^\d+$/.test(f))
    .filter((f) => {
      try {
        const by = (JSON.parse(readFileSync(join(dir, f), 'utf8')) as { by?: string }).by ?? '';
        return keys.some((k) => by.startsWith(k));
      } catch {
        return false;
      }
    });
}

beforeAll(async () => {
  for (let i = 0; i < 2; i++) {
    const home = mkdtempSync(join(tmpdir(), 'gaxx-e2e-homes-'));
    homes.push(home);
    const init = await gaxx(home, ['init', '--name', 'alice']);
    expect(init.code, init.stderr).toBe(0);
  }
}, LONG);

afterAll(async () => {
  // Fleets a failed test left behind: their agents are processes of this machine.
  for (const home of homes) await gaxx(home, ['delete', 'race', '--yes']);
  for (const home of homes) rmSync(home, { recursive: true, force: true });
}, LONG);

describe('local fleets of two installations', () => {
  it(
    'spawned at once on one port, each gets addresses of its own and is ready; delete releases them',
    async () => {
      const env = { GAXX_AGENT_PORT: String(await freePort()) };
      const spawns = await Promise.all(homes.map((home) => gaxx(home, ['spawn', '--provider', 'local', '--count', '3', '--fleet', 'race', '--json'], env)));
      for (const s of spawns) expect(s.code, s.stderr).toBe(0);
      const addresses: string[] = [];
      for (const home of homes) {
        const ls = await gaxx(home, ['ls', 'race', '--json']);
        expect(ls.code, ls.stderr).toBe(0);
        const hosts = (JSON.parse(ls.stdout) as { hosts: { address: string; state: string }[] }[])[0]?.hosts ?? [];
        expect(hosts.map((h) => h.state)).toEqual(['ready', 'ready', 'ready']);
        addresses.push(...hosts.map((h) => h.address));
      }
      expect(new Set(addresses).size).toBe(6);
      // Every address is claimed, once, by the installation whose agent runs there.
      expect(claimsOf(homes)).toHaveLength(6);
      for (const home of homes) {
        const del = await gaxx(home, ['delete', 'race', '--yes', '--json']);
        expect(del.code, del.stderr).toBe(0);
        expect((JSON.parse(del.stdout) as { destroyed: number }).destroyed).toBe(3);
      }
      expect(claimsOf(homes)).toEqual([]);
    },
    LONG,
  );
});
