// A fleet's TTL and budget with the built CLI against the fake Linode API, whose instances are
// real sshd test hosts applying the cloud-init user data gaxx sent: `gaxx spawn --ttl 5s`
// records the limits and gives each VM its poweroff safety net; `gaxx ls` shows the TTL left
// and the cost so far; a running `gaxx scheduler` then deletes the fleet through the same path
// as `gaxx delete F --yes` (instance destroyed, certificates revoked, known_hosts entries and
// state cleared); a fleet within its limits is left alone. A spawn with limits and no daemon
// heartbeat in Redis warns that nothing would enforce them. Bad --ttl/--budget values are one
// clear USAGE line, and nothing is created.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TTL_TIMER_PATH } from '../../cli/bootstrap/cloud-init.js';
import { readFleet } from '../../cli/state.js';
import { FleetCa } from '../../certs/index.js';
import { exitCodeFor } from '../../proto/index.js';
import { limitedFleets } from '../../scheduler/queue/fleet-limits.js';
import { createRedis, fleetAgents, redisSettingsFromUrl, schedulerAlive, waitReady } from '../../scheduler/index.js';
import { runGaxx, spawnGaxx } from '../helpers/cli.js';
import { FakeLinode } from '../helpers/fake-linode.js';
import { eventually } from '../helpers/poll.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { testHostBackend } from '../helpers/test-host-backend.js';
import { stopAllTestHosts } from '../helpers/test-host.js';

const TOKEN = 'e2e-0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978';
const LONG = 600_000;
let home: string;
let redis: TestRedis;
let fake: FakeLinode;
const { backend, hosts } = testHostBackend();

const env = (): Record<string, string> => ({ GAXX_REDIS_URL: redis.url, GAXX_LINODE_URL: fake.url, LINODE_TOKEN: TOKEN });
const gaxx = (args: string[]) => runGaxx(args, { home, env: env(), timeoutMs: LONG });

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
  it('bad --ttl, --budget or timeouts (durations need a unit): one USAGE line, nothing rented or recorded', async () => {
    const cases = [
      ['--provider', 'linode', '--ttl', 'banana'],
      ['--provider', 'linode', '--ttl', '0'],
      ['--provider', 'linode', '--ttl', '30'],
      ['--provider', 'linode', '--budget', '-1'],
      ['--provider', 'linode', '--budget', 'five'],
      ['--provider', 'linode', '--budget', '0'],
      ['--provider', 'linode', '--ssh-timeout', '30'],
      ['--provider', 'linode', '--ready-timeout', 'soon'],
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
    'TTL 5 s with the scheduler daemon running: the spawn completes, the VM has its poweroff timer, then the daemon deletes the fleet; ls shows TTL and cost',
    async () => {
      // A fleet within its limits: ls shows them, and it outlives the other.
      const kept = await gaxx(['spawn', '--provider', 'linode', '--count', '1', '--fleet', 'keep', '--ttl', '1h', '--budget', '5', '--json']);
      expect(kept.code, kept.stderr).toBe(0);
      // No scheduler is running yet: the spawn says that nothing would enforce the limits.
      expect(kept.stderr).toMatch(/^gaxx: warning: no gaxx scheduler is running.*TTL and budget of keep/m);
      const listed = (await lsJson()).find((f) => f.fleet === 'keep');
      expect(listed?.limits).toMatchObject({ budget: 5, currency: 'USD' });
      expect(listed?.limits?.ttlLeftSeconds).toBeGreaterThan(3000);
      expect(listed?.limits?.ttlLeftSeconds).toBeLessThanOrEqual(3600);
      expect(listed?.limits?.costSoFar).toBeGreaterThan(0);
      const human = await gaxx(['ls']);
      expect(human.stdout).toMatch(/^keep: linode, 1\/1 ready, .*TTL \d+m left, cost so far \d+\.\d{4} USD of 5\.00 budget$/m);
      const keepId = readFleet(join(home, 'state', 'fleets'), 'keep')?.hosts[0]?.id as string;
      // The poweroff timer is on the VM, at the deadline plus the 10 minute margin (UTC).
      const timer = (await hosts.get(keepId)?.sh(`cat ${TTL_TIMER_PATH}`))?.stdout ?? '';
      const at = /^OnCalendar=(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) UTC$/m.exec(timer);
      const powerOffAt = Date.parse(`${at?.[1]}T${at?.[2]}Z`);
      const expiresAt = Date.parse(listed?.limits?.expiresAt ?? '');
      expect(Math.abs(powerOffAt - (expiresAt + 600_000))).toBeLessThan(120_000);

      const conn = createRedis(redisSettingsFromUrl(redis.url), 'producer');
      await waitReady(conn);
      const daemon = spawnGaxx(['scheduler', '--reap-interval', '1s', '--metrics-listen', '127.0.0.1:0', '--ui-listen', '127.0.0.1:0'], { home, env: env() });
      try {
        expect(await eventually(() => schedulerAlive(conn), 60_000), daemon.stderr()).toBe(true);
        // The TTL may pass while the spawn still runs: the spawn holds the fleet, so it completes.
        const made = await gaxx(['spawn', '--provider', 'linode', '--count', '1', '--fleet', 'web', '--ttl', '5s', '--budget', '5', '--json']);
        expect(made.code, made.stderr).toBe(0);
        // Its heartbeat seen, the spawn gives no warning.
        expect(made.stderr).not.toContain('warning: no gaxx scheduler');
        const result = JSON.parse(made.stdout) as { ready: unknown[]; limits: { budget: number; currency: string; expiresAt: string } };
        expect(result.ready).toHaveLength(1);
        expect(result.limits).toMatchObject({ budget: 5, currency: 'USD' });
        const id = [...fake.instances.values()].find((i) => i.tags.includes('gaxx-fleet:web'))?.id as string;
        expect(id).toBeDefined();
        // The safety net went to the VM through cloud-init: the timer file and cloud-init's poweroff.
        expect(hosts.get(id)?.applied?.files).toContain(TTL_TIMER_PATH);
        expect(hosts.get(id)?.applied?.powerState?.mode).toBe('poweroff');

        expect(await eventually(() => !fake.instances.has(id), 120_000), daemon.stderr()).toBe(true);
        expect(await eventually(async () => !(await lsJson()).some((f) => f.fleet === 'web'), 30_000), daemon.stderr()).toBe(true);
        expect(await limitedFleets(conn)).toEqual(['keep']);
        expect(await fleetAgents(conn, 'web')).toEqual([]);
        const knownHosts = readFileSync(join(home, 'config', 'ssh', 'known_hosts'), 'utf8');
        expect(knownHosts).not.toContain('gaxx-fleet=web');
        expect(knownHosts).toContain('gaxx-fleet=keep');
        const ca = FleetCa.open(join(home, 'config', 'ca'));
        const revoked = ca.revoked();
        const webCerts = ca.list().filter((r) => r.identity.role === 'agent' && r.identity.fleet === 'web');
        expect(webCerts.length).toBeGreaterThan(0);
        expect(webCerts.every((r) => revoked.has(r.serial))).toBe(true);
        await vi.waitFor(() => expect(daemon.stderr()).toMatch(/"reason":"ttl"/), { timeout: 30_000, interval: 50 });
        // The fleet within its limits is untouched.
        expect(fake.instances.has(keepId)).toBe(true);
        expect((await lsJson()).map((f) => f.fleet)).toEqual(['keep']);
      } finally {
        daemon.kill('SIGTERM');
        await daemon.done;
        conn.disconnect();
      }
    },
    LONG,
  );
});
