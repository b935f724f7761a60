// `gaxx certs revoke` with the built CLI and a local fleet (two real agents, run as nobody): the
// signed list is pushed to every agent of the recorded fleets, which refuse the revoked serial on
// their next call, on a connection opened before the revocation too; with --no-push nothing is
// sent and the agents still accept it; an agent that cannot be reached is named and the command
// exits 12, and a second run pushes again once it is back.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetStore, readFleet, type FleetState } from '../../cli/state.js';
import { loadCertDir } from '../../certs/index.js';
import { exitCodeFor, isGaxxError } from '../../proto/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { runGaxx } from '../helpers/cli.js';
import { eventually } from '../helpers/poll.js';
import { freePort } from '../helpers/ports.js';

const LONG = 300_000;
let home: string;
let env: Record<string, string>;
let addresses: string[] = [];

const gaxx = (args: string[]) => runGaxx(args, { home, env, timeoutMs: LONG });

/** A monitor certificate in DIR, and its serial. */
async function monitor(name: string): Promise<{ dir: string; serial: string }> {
  const dir = join(home, 'clients', name);
  const r = await gaxx(['certs', 'issue', '--role', 'monitor', '--name', name, '--out', dir, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return { dir, serial: (JSON.parse(r.stdout) as { serial: string }).serial };
}

/** Each agent's answer to Info over `clients`' connections: 'ok' or the refusal's gaxx code. */
async function infoCodes(clients: AgentClient[]): Promise<string[]> {
  const out: string[] = [];
  for (const c of clients)
    out.push(
      await c.info().then(
        () => 'ok',
        (e: unknown) => (isGaxxError(e) ? e.code : String(e)),
      ),
    );
  return out;
}

/** Whether every one of `clients` is refused with CERT_REVOKED within 30 s (agents reload the pushed list). */
const refusedByAll = (clients: AgentClient[]): Promise<boolean> =>
  eventually(async () => (await infoCodes(clients)).every((c) => c === 'CERT_REVOKED'), 30_000, 100);

/** Clients of both agents with the certificate in `dir` (each keeps its connection). */
const clientsOf = (dir: string): AgentClient[] => addresses.map((a) => AgentClient.connect({ address: a }, loadCertDir(dir)));

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'gxrevoke-'));
  env = { GAXX_AGENT_PORT: String(await freePort()) };
  expect((await gaxx(['init', '--name', 'alice'])).code).toBe(0);
  const made = await gaxx(['spawn', '--provider', 'local', '--count', '2', '--fleet', 'rv']);
  expect(made.code, made.stderr).toBe(0);
  addresses = (readFleet(join(home, 'state', 'fleets'), 'rv')?.hosts ?? []).map((h) => h.agent as string);
  expect(addresses).toHaveLength(2);
}, LONG);

afterAll(async () => {
  if (home && existsSync(join(home, 'state', 'fleets', 'rv.json'))) await gaxx(['delete', 'rv', '--yes']);
  if (home) rmSync(home, { recursive: true, force: true });
}, LONG);

describe('gaxx certs revoke', () => {
  it(
    'pushes the list to every agent of the recorded fleets: the serial is refused at once, on an open connection too',
    async () => {
      const m = await monitor('m1');
      const clients = clientsOf(m.dir);
      try {
        expect(await infoCodes(clients)).toEqual(['ok', 'ok']);
        const r = await gaxx(['certs', 'revoke', m.serial, '--json']);
        expect(r.code, r.stderr).toBe(0);
        const pushed = (JSON.parse(r.stdout) as { pushed: Array<{ fleet: string; host: string; ok: boolean }> }).pushed;
        expect(pushed.map((p) => [p.fleet, p.host, p.ok])).toEqual([
          ['rv', 'gaxx-rv-0', true],
          ['rv', 'gaxx-rv-1', true],
        ]);
        // The same connections, opened before the revocation: refused at once, since an agent
        // applies a pushed list before it answers the push.
        expect(await infoCodes(clients)).toEqual(['CERT_REVOKED', 'CERT_REVOKED']);
        // The operator's calls go on.
        const ok = await gaxx(['exec', '--agent', addresses[0] as string, '--no-stdin', '--', 'true']);
        expect(ok.code, ok.stderr).toBe(0);
      } finally {
        for (const c of clients) c.close();
      }
    },
    LONG,
  );

  it(
    "six revokes at once: each reaches every agent (one that took a newer list first gets the CA's newest instead) and exits 0; each agent refuses all six",
    async () => {
      const ms = await Promise.all(['c1', 'c2', 'c3', 'c4', 'c5', 'c6'].map((n) => monitor(n)));
      const runs = await Promise.all(ms.map((m) => gaxx(['certs', 'revoke', m.serial, '--json'])));
      // Before, those whose older list reached an agent after a newer one were refused there as a
      // rollback: NOT pushed, exit 12.
      for (const r of runs) {
        expect(r.code, r.stdout + r.stderr).toBe(0);
        expect((JSON.parse(r.stdout) as { pushed: Array<{ ok: boolean }> }).pushed.map((p) => p.ok)).toEqual([true, true]);
      }
      for (const m of ms) {
        const clients = clientsOf(m.dir);
        try {
          expect(await infoCodes(clients)).toEqual(['CERT_REVOKED', 'CERT_REVOKED']);
        } finally {
          for (const c of clients) c.close();
        }
      }
    },
    LONG,
  );

  it(
    'with --no-push sends nothing (agents still accept the serial); a run without it pushes then',
    async () => {
      const m = await monitor('m2');
      const clients = clientsOf(m.dir);
      try {
        const r = await gaxx(['certs', 'revoke', m.serial, '--no-push']);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain('not pushed (--no-push)');
        expect(await infoCodes(clients)).toEqual(['ok', 'ok']);
        const again = await gaxx(['certs', 'revoke', m.serial]);
        expect(again.code, again.stderr).toBe(0);
        expect(again.stdout).toContain('already revoked');
        expect(again.stdout).toContain('pushed to 2 of 2 agents');
        expect(await refusedByAll(clients)).toBe(true);
      } finally {
        for (const c of clients) c.close();
      }
    },
    LONG,
  );

  it(
    'names an agent it could not reach and exits 12; the list is signed all the same',
    async () => {
      const m = await monitor('m3');
      // One agent recorded at a port where nothing listens.
      const fleets = join(home, 'state', 'fleets');
      const store = new FleetStore(fleets, readFleet(fleets, 'rv') as FleetState);
      const recordAt = (address: string | undefined) =>
        store.update((s) => {
          const h = s.hosts.find((x) => x.name === 'gaxx-rv-1');
          if (h) h.agent = address;
        });
      const real = store.state.hosts.find((h) => h.name === 'gaxx-rv-1')?.agent;
      await recordAt('127.0.0.1:1');
      const r = await gaxx(['certs', 'revoke', m.serial]);
      expect(r.code).toBe(exitCodeFor('UNAVAILABLE'));
      expect(r.stdout).toContain('pushed to 1 of 2 agents');
      expect(r.stdout).toMatch(/NOT pushed to rv\/gaxx-rv-1 \(127\.0\.0\.1:1\)/);
      const list = await gaxx(['certs', 'list', '--json']);
      expect((JSON.parse(list.stdout) as Array<{ serial: string; status: string }>).find((c) => c.serial === m.serial)?.status).toBe('revoked');
      // Back at its address: a second run pushes to both.
      await recordAt(real);
      const again = await gaxx(['certs', 'revoke', m.serial]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain('pushed to 2 of 2 agents');
    },
    LONG,
  );

  it(
    'skips an agent whose own certificate is revoked (no client talks to it), without failing the revoke',
    async () => {
      const list = await gaxx(['certs', 'list', '--json']);
      type Row = { serial: string; status: string; identity: string };
      const agent1 = (JSON.parse(list.stdout) as Row[]).find((c) => c.identity === 'spiffe://gaxx/agent/rv/gaxx-rv-1' && c.status === 'valid');
      expect(agent1).toBeDefined();
      const r = await gaxx(['certs', 'revoke', (agent1 as Row).serial]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('pushed to 1 of 2 agents');
      expect(r.stdout).toMatch(/skipped rv\/gaxx-rv-1 \(.*\): its own certificate is revoked/);
      const m = await monitor('m4');
      const next = await gaxx(['certs', 'revoke', m.serial, '--json']);
      expect(next.code, next.stderr).toBe(0);
      expect(
        (JSON.parse(next.stdout) as { pushed: Array<{ host: string; ok: boolean; skipped?: boolean }> }).pushed.map((p) => [p.host, p.ok, p.skipped ?? false]),
      ).toEqual([
        ['gaxx-rv-0', true, false],
        ['gaxx-rv-1', false, true],
      ]);
      // Rotation renews the other and names the revoked one instead of passing over it.
      const rot = await gaxx(['certs', 'rotate', '--fleet', 'rv', '--json']);
      expect(rot.code, rot.stderr).toBe(exitCodeFor('FAILED_PRECONDITION'));
      expect((JSON.parse(rot.stdout) as Array<{ host: string; ok: boolean; code?: string }>).map((r) => [r.host, r.ok, r.code ?? ''])).toEqual([
        ['gaxx-rv-0', true, ''],
        ['gaxx-rv-1', false, 'FAILED_PRECONDITION'],
      ]);
    },
    LONG,
  );
});
