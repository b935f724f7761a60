// A fleet's TTL and budget with the built CLI against the fake Linode API, whose instances are
// real sshd test hosts applying the cloud-init user data gaxx sent: `gaxx spawn --ttl 5s`
// records the limits and gives each VM its poweroff safety net; `gaxx ls` shows the TTL left
// and the cost so far; a running `gaxx scheduler` then deletes the fleet through the same path
// as `gaxx delete F --yes` (instance destroyed, certificates revoked, known_hosts entries and
// state cleared); a fleet within its limits is left alone. Bad --ttl/--budget values are one
// clear USAGE line, and nothing is created.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TTL_TIMER_PATH } from '../../cli/bootstrap/cloud-init.js';
import { readFleet } from '../../cli/state.js';
import { FleetCa } from '../../certs/index.js';
import { exitCodeFor } from '../../proto/index.js';
import { createRedis, fleetAgents, limitedFleets, redisSettingsFromUrl, setFleetLimits, waitReady } from '../../scheduler/index.js';
import { CLI_MAIN, runGaxx } from '../helpers/cli.js';
import type { InstanceBackend } from '../helpers/fake-cloud.js';
import { FakeLinode } from '../helpers/fake-linode.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startTestHost, stopAllTestHosts, type TestHost } from '../helpers/test-host.js';

const TOKEN = 'e2e-0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978';
const LONG = 600_000;
let home: string;
let redis: TestRedis;
let fake: FakeLinode;
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

const env = (): Record<string, string> => ({ GAXX_REDIS_URL: redis.url, GAXX_LINODE_URL: fake.url, LINODE_TOKEN: TOKEN });
const gaxx = (args: string[]) => runGaxx(args, { home, env: env(), timeoutMs: LONG });

/** Polls `check` every 100 ms until it holds or `ms` passed; whether it held. */
async function eventually(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (await check()) return true;
  return check();
}

interface LsFleet {
  fleet: string;
  limits?: { expiresAt?: string; ttlLeftSeconds?: number; budget?: number; costSoFar: number; currency: string };
}

async function lsJson(): Promise<LsFleet[]> {
  const ls = await gaxx(['ls', '--json']);
  expect(ls.code, ls.stderr).toBe(0);
  return JSON.parse(ls.stdout) as LsFleet[];
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'gxttl-'));
  redis = await startRedis();
  fake = await new FakeLinode({ token: TOKEN, backend }).start();
  const init = await gaxx(['init', '--name', 'alice']);
  expect(init.code, init.stderr).toBe(0);
}, LONG);

afterAll(async () => {
  await fake?.stop();
  await stopAllTestHosts();
  await redis?.destroy();
  rmSync(home, { recursive: true, force: true });
});

describe('gaxx spawn --ttl/--budget', () => {
  it('bad --ttl or --budget: one USAGE line, nothing rented or recorded', async () => {
    const cases = [
      ['--provider', 'linode', '--ttl', 'banana'],
      ['--provider', 'linode', '--ttl', '0'],
      ['--provider', 'linode', '--ttl', '30'],
      ['--provider', 'linode', '--budget', '-1'],
      ['--provider', 'linode', '--budget', 'five'],
      ['--provider', 'linode', '--budget', '0'],
      // local hosts have no price: a budget could never be reached.
      ['--provider', 'local', '--budget', '5'],
    ];
    for (const c of cases) {
      const r = await gaxx(['spawn', '--count', '1', '--fleet', 'bad', ...c]);
      expect(r.code, `${c.join(' ')}: ${r.stderr}`).toBe(exitCodeFor('USAGE'));
      expect(r.stderr.trim().split('\n'), c.join(' ')).toHaveLength(1);
    }
    expect(fake.instances.size).toBe(0);
    expect(existsSync(join(home, 'state', 'fleets', 'bad.json'))).toBe(false);
  });

  it(
    'TTL 5 s: the VM gets its poweroff timer, ls shows the TTL and cost, and the scheduler daemon deletes the fleet',
    async () => {
      const made = await gaxx(['spawn', '--provider', 'linode', '--count', '1', '--fleet', 'web', '--ttl', '5s', '--budget', '5', '--json']);
      expect(made.code, made.stderr).toBe(0);
      const state = readFleet(join(home, 'state', 'fleets'), 'web');
      expect(state?.limits).toMatchObject({ budget: 5, currency: 'USD' });
      const inst = [...fake.instances.values()];
      expect(inst).toHaveLength(1);
      const id = (inst[0] as { id: string }).id;
      // The safety net went to the VM through cloud-init: the timer file and cloud-init's poweroff.
      expect(hosts.get(id)?.applied?.files).toContain(TTL_TIMER_PATH);
      expect(hosts.get(id)?.applied?.powerState?.mode).toBe('poweroff');
      expect((await hosts.get(id)?.sh(`cat ${TTL_TIMER_PATH}`))?.stdout).toMatch(/^OnCalendar=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/m);
      const listed = (await lsJson()).find((f) => f.fleet === 'web');
      expect(listed?.limits).toMatchObject({ budget: 5, currency: 'USD' });
      expect(listed?.limits?.ttlLeftSeconds).toBeLessThanOrEqual(5);
      expect(listed?.limits?.costSoFar).toBeGreaterThan(0);
      const human = await gaxx(['ls']);
      expect(human.stdout).toMatch(/^web: linode, 1\/1 ready, .*cost so far \d+\.\d{4} USD of 5\.00 budget/m);
      const knownHosts = join(home, 'config', 'ssh', 'known_hosts');
      expect(readFileSync(knownHosts, 'utf8')).toContain('gaxx-fleet=web');

      const conn = createRedis(redisSettingsFromUrl(redis.url), 'producer');
      await waitReady(conn);
      try {
        expect(await limitedFleets(conn)).toContain('web');
        await setFleetLimits(conn, 'keep', { since: Date.now(), expiresAt: Date.now() + 3_600_000, budget: 5 });
        const daemon = spawn(
          process.execPath,
          [CLI_MAIN, 'scheduler', '--reap-interval', '1s', '--metrics-listen', '127.0.0.1:0', '--ui-listen', '127.0.0.1:0'],
          {
            env: { PATH: process.env.PATH ?? '', GAXX_HOME: home, ...env() },
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        );
        let log = '';
        daemon.stderr.on('data', (b: Buffer) => (log += b.toString()));
        const exited = new Promise((r) => daemon.once('exit', r));
        try {
          expect(await eventually(() => !fake.instances.has(id), 120_000), log).toBe(true);
          expect(await eventually(async () => !(await lsJson()).some((f) => f.fleet === 'web'), 30_000), log).toBe(true);
          expect(await limitedFleets(conn)).toEqual(['keep']);
          expect(await fleetAgents(conn, 'web')).toEqual([]);
          expect(readFileSync(knownHosts, 'utf8')).not.toContain('gaxx-fleet=web');
          const ca = FleetCa.open(join(home, 'config', 'ca'));
          const revoked = ca.revoked();
          const webCerts = ca.list().filter((r) => r.identity.role === 'agent' && r.identity.fleet === 'web');
          expect(webCerts.length).toBeGreaterThan(0);
          expect(webCerts.every((r) => revoked.has(r.serial))).toBe(true);
          expect(log).toMatch(/"reason":"ttl"/);
        } finally {
          daemon.kill('SIGTERM');
          await exited;
        }
      } finally {
        conn.disconnect();
      }
    },
    LONG,
  );
});
