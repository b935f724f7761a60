// gaxx's own client certificates after `gaxx certs revoke`, with the built CLI and a local fleet
// (a real agent over mTLS, which gets the re-signed list pushed): the local scheduler
// certificate is judged by the CA's list, not by its dir's copy of it, and issued anew at its
// next use, with a note: by the next `gaxx run`, during a long run, and by a running scheduler
// daemon (which dispatches with the new one without a restart). The same for the dashboard's
// monitor certificate (`gaxx ui` collects the agent again), and a revoked operator certificate
// is refused before anything is sent, naming `gaxx init`, which renews it.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadCertDir } from '../../certs/index.js';
import { exitCodeFor, isGaxxError } from '../../proto/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { createRedis, redisSettingsFromUrl, schedulerAlive, waitReady } from '../../scheduler/index.js';
import { spawnGaxx, type GaxxProcess } from '../helpers/cli.js';
import { localFleetHome, type LocalFleetHome } from '../helpers/cli-world.js';
import { eventually } from '../helpers/poll.js';

const LONG = 300_000;
const FLEET = 'lc';
let w: LocalFleetHome;
let agentAddress: string;

/** The serial of the valid certificate of `subject` ('scheduler local', 'monitor local', 'operator alice'). */
async function validSerial(subject: string): Promise<string> {
  const r = await w.gaxx(['certs', 'list', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const rows = JSON.parse(r.stdout) as Array<{ serial: string; subject: string; status: string }>;
  const row = rows.find((c) => c.subject === subject && c.status === 'valid');
  if (!row) throw new Error(`no valid ${subject} certificate: ${r.stdout}`);
  return row.serial;
}

/** `gaxx certs revoke SERIAL`, pushed to the fleet's agent (which then refuses it on every call). */
async function revoke(serial: string): Promise<string> {
  const r = await w.gaxx(['certs', 'revoke', serial]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toContain('pushed to 1 of 1 agent');
  return r.stdout;
}

/** What the agent answers Info with the certificate in `dir` as it is now: 'ok' or the refusal's code. */
async function infoWith(dir: string): Promise<string> {
  const c = AgentClient.connect({ address: agentAddress }, loadCertDir(dir));
  try {
    return await c.info().then(
      () => 'ok',
      (e: unknown) => (isGaxxError(e) ? e.code : String(e)),
    );
  } finally {
    c.close();
  }
}

const schedulerDir = (): string => join(w.home, 'state', 'scheduler', 'certs');
const monitorDir = (): string => join(w.home, 'state', 'monitor', 'certs');

/** A copy of the cert dir `dir` as it is now (the agent is asked with it after it was replaced). */
function snapshot(dir: string, name: string): string {
  const to = join(w.home, 'kept', name);
  mkdirSync(to, { recursive: true, mode: 0o700 });
  // key.pem stays private, as loadCertDir wants it.
  for (const f of ['cert.pem', 'key.pem', 'ca.pem']) writeFileSync(join(to, f), readFileSync(join(dir, f)), { mode: f === 'key.pem' ? 0o600 : 0o644 });
  return to;
}

beforeAll(async () => {
  w = await localFleetHome('gxlocalcreds-');
  const made = await w.gaxx(['spawn', '--provider', 'local', '--count', '1', '--fleet', FLEET]);
  expect(made.code, made.stderr).toBe(0);
  const ls = await w.gaxx(['ls', '--json']);
  const fleets = JSON.parse(ls.stdout) as Array<{ fleet: string; hosts: Array<{ agent?: string }> }>;
  agentAddress = fleets.find((f) => f.fleet === FLEET)?.hosts[0]?.agent as string;
  expect(agentAddress).toMatch(/:\d+$/);
}, LONG);

afterAll(async () => {
  await w?.close();
}, LONG);

describe('a revoked local scheduler certificate', () => {
  it(
    'is issued anew by the next `gaxx run`, which succeeds and says so',
    async () => {
      const first = await w.gaxx(['run', '--fleet', FLEET, '--', 'true']);
      expect(first.code, first.stderr).toBe(0);
      const old = await validSerial('scheduler local');
      const said = await revoke(old);
      // The agent refuses the old certificate now: the run would fail with it.
      const kept = snapshot(schedulerDir(), 'scheduler-1');
      expect(await infoWith(kept)).toBe('CERT_REVOKED');
      const r = await w.gaxx(['run', '--fleet', FLEET, '--', 'true']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('succeeded');
      const fresh = await validSerial('scheduler local');
      expect(fresh).not.toBe(old);
      expect(r.stderr).toContain(`gaxx: the scheduler certificate ${old} in ${schedulerDir()} is revoked: issued a new one from the local CA, serial ${fresh}`);
      // Once: the next run uses it as it is.
      const again = await w.gaxx(['run', '--fleet', FLEET, '--', 'true']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).not.toContain('issued a new one');
      // `certs revoke` said whose certificate it was.
      expect(said).toContain(`this is gaxx's local scheduler certificate (${schedulerDir()}): a new one is issued at its next use`);
    },
    LONG,
  );

  it(
    'revoked while a run goes on (no daemon): its later tasks go out with a new one',
    async () => {
      const run = spawnGaxx(['run', '--fleet', FLEET, '--tasks', '-', '--', 'echo', 'task-{}'], { home: w.home, env: w.env, stdin: 'pipe' });
      try {
        run.child.stdin?.write('one\n');
        await run.line('stdout', (l) => l.includes('task-one'));
        await revoke(await validSerial('scheduler local'));
        run.child.stdin?.write('two\n');
        run.child.stdin?.end();
        const end = await run.done;
        expect(end.code, end.stdout + end.stderr).toBe(0);
        expect(end.stdout).toContain('task-two');
        expect(end.stderr).toMatch(/gaxx: the scheduler certificate [0-9A-F]+ in .* is revoked: issued a new one from the local CA/);
      } finally {
        run.kill('SIGKILL');
      }
    },
    LONG,
  );
});

describe('a revoked local scheduler certificate with `gaxx scheduler` running', () => {
  let daemon: GaxxProcess;
  let redis: ReturnType<typeof createRedis>;

  const startDaemon = async (): Promise<GaxxProcess> => {
    const d = spawnGaxx(['scheduler', '--metrics-listen', '', '--ui-listen', ''], { home: w.home, env: w.env });
    await d.line('stderr', (l) => l.includes('"scheduler started"'));
    expect(await eventually(() => schedulerAlive(redis), 60_000)).toBe(true);
    return d;
  };

  beforeAll(async () => {
    redis = createRedis(redisSettingsFromUrl(w.redis.url), 'producer');
    await waitReady(redis);
    daemon = await startDaemon();
  }, LONG);

  afterAll(async () => {
    daemon?.kill('SIGKILL');
    await daemon?.done;
    redis?.disconnect();
  });

  /** `gaxx run` one task on the fleet, which the daemon dispatches. */
  const runByDaemon = async (): Promise<{ code: number; stdout: string; stderr: string }> => {
    const r = await w.gaxx(['run', '--timings', '--fleet', FLEET, '--', 'true']);
    expect(r.stderr).toMatch(/dispatched by the scheduler daemon$/m);
    return r;
  };

  it(
    'the next run succeeds through the daemon: it dispatches with the certificate issued anew',
    async () => {
      expect((await runByDaemon()).code).toBe(0);
      const old = await validSerial('scheduler local');
      await revoke(old);
      const r = await runByDaemon();
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(await validSerial('scheduler local')).not.toBe(old);
    },
    LONG,
  );

  it(
    'revoked during a run the daemon serves: the daemon issues a new one itself and the later tasks succeed',
    async () => {
      const run = spawnGaxx(['run', '--timings', '--fleet', FLEET, '--tasks', '-', '--', 'echo', 'task-{}'], { home: w.home, env: w.env, stdin: 'pipe' });
      try {
        run.child.stdin?.write('one\n');
        await run.line('stdout', (l) => l.includes('task-one'));
        const old = await validSerial('scheduler local');
        await revoke(old);
        run.child.stdin?.write('two\n');
        run.child.stdin?.end();
        const end = await run.done;
        expect(end.code, end.stdout + end.stderr).toBe(0);
        expect(end.stdout).toContain('task-two');
        expect(end.stderr).toMatch(/dispatched by the scheduler daemon$/m);
        // The daemon issued it (the run asked for none after its start) and logged it.
        const fresh = await validSerial('scheduler local');
        expect(fresh).not.toBe(old);
        await vi.waitFor(
          () =>
            expect(daemon.stderr()).toContain(
              `the scheduler certificate ${old} in ${schedulerDir()} is revoked: issued a new one from the local CA, serial ${fresh}`,
            ),
          { timeout: 30_000, interval: 50 },
        );
      } finally {
        run.kill('SIGKILL');
      }
    },
    LONG,
  );

  it(
    'a daemon started with a revoked one issues a new one at its start',
    async () => {
      daemon.kill('SIGTERM');
      expect((await daemon.done).code).toBe(0);
      const old = await validSerial('scheduler local');
      await revoke(old);
      daemon = await startDaemon();
      const fresh = await validSerial('scheduler local');
      expect(fresh).not.toBe(old);
      await vi.waitFor(() => expect(daemon.stderr()).toContain(`the scheduler certificate ${old} in ${schedulerDir()} is revoked: issued a new one`), {
        timeout: 30_000,
        interval: 50,
      });
      const r = await runByDaemon();
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stderr).not.toContain('issued a new one');
    },
    LONG,
  );
});

describe('a revoked scheduler certificate the user gave (`gaxx scheduler --certs DIR`)', () => {
  let redis: ReturnType<typeof createRedis>;
  beforeAll(async () => {
    redis = createRedis(redisSettingsFromUrl(w.redis.url), 'producer');
    await waitReady(redis);
  });
  afterAll(() => redis?.disconnect());

  /** A scheduler certificate issued into `dir`; its serial. */
  const issue = async (name: string, dir: string): Promise<string> => {
    const r = await w.gaxx(['certs', 'issue', '--role', 'scheduler', '--name', name, '--out', dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { serial: string }).serial;
  };

  it(
    'is not re-issued: the daemon logs what to do, tasks fail naming the certificate and the fix, and new files in DIR are used at once',
    async () => {
      const dir = join(w.home, 'given', 'scheduler');
      const serial = await issue('s1', dir);
      const daemon = spawnGaxx(['scheduler', '--certs', dir, '--metrics-listen', '', '--ui-listen', ''], { home: w.home, env: w.env });
      try {
        await daemon.line('stderr', (l) => l.includes('"scheduler started"'));
        expect(await eventually(() => schedulerAlive(redis), 60_000)).toBe(true);
        const before = await w.gaxx(['run', '--fleet', FLEET, '--', 'true']);
        expect(before.code, before.stderr).toBe(0);
        await revoke(serial);
        const r = await w.gaxx(['run', '--timings', '--fleet', FLEET, '--', 'true']);
        expect(r.stderr).toMatch(/dispatched by the scheduler daemon$/m);
        expect(r.code).toBe(exitCodeFor('UNAVAILABLE'));
        // Not the agent's fault: the refusal names this scheduler's certificate and what to do.
        expect(r.stdout).toContain(
          `the agent refuses this client's certificate (scheduler s1, serial ${serial}, from ${dir}) as revoked; put a new certificate in ${dir}`,
        );
        const logged = await daemon.line('stderr', (l) => l.includes('"level":50') && l.includes(`the scheduler certificate ${serial} in ${dir} is revoked`));
        expect(logged).toContain('gaxx certs issue --role scheduler');
        // A new certificate put in DIR (key first, as a careful hand does): the next run uses it.
        const next = join(w.home, 'given', 'next');
        const fresh = await issue('s1', next);
        for (const f of ['key.pem', 'ca.pem', 'revoked.json', 'cert.pem']) copyFileSync(join(next, f), join(dir, f));
        const ok = await w.gaxx(['run', '--fleet', FLEET, '--', 'true']);
        expect(ok.code, ok.stdout + ok.stderr).toBe(0);
        expect(loadCertDir(dir).summary.serial).toBe(fresh);
      } finally {
        daemon.kill('SIGTERM');
        await daemon.done;
      }
      // Started with it revoked: refused, saying what to do.
      await revoke(await issue('s2', join(w.home, 'given', 'revoked')));
      const refused = await w.gaxx(['scheduler', '--certs', join(w.home, 'given', 'revoked'), '--metrics-listen', '', '--ui-listen', '']);
      expect(refused.code, refused.stderr).toBe(exitCodeFor('CERT_REVOKED'));
      expect(refused.stderr).toContain(`in ${join(w.home, 'given', 'revoked')} is revoked`);
      expect(refused.stderr).toContain('put a new certificate in');
    },
    LONG,
  );
});

/** `gaxx ui --fleet` serving here; its /metrics text. */
async function startUi(): Promise<{ ui: GaxxProcess; metrics: () => Promise<string> }> {
  const ui = spawnGaxx(['ui', '--fleet', FLEET, '--listen', '127.0.0.1:0', '--interval', '300ms', '--json'], { home: w.home, env: w.env });
  const { url } = JSON.parse(await ui.line('stdout', () => true)) as { url: string };
  const u = new URL(url);
  const metrics = async (): Promise<string> => (await fetch(`${u.origin}/metrics?token=${u.searchParams.get('token')}`)).text();
  return { ui, metrics };
}

/** The `up` of the fleet's agent in a /metrics text ('' when not there yet). */
const upOf = (text: string): string => /^up\{[^}]*fleet="lc"[^}]*\} (\d)$/m.exec(text)?.[1] ?? '';

describe('a revoked local monitor certificate', () => {
  it(
    '`gaxx ui` issues a new one and collects the agent again (up 1)',
    async () => {
      const first = await startUi();
      try {
        await expect.poll(async () => upOf(await first.metrics()), { timeout: 60_000 }).toBe('1');
      } finally {
        first.ui.kill('SIGINT');
        await first.ui.done;
      }
      const old = await validSerial('monitor local');
      const said = await revoke(old);
      expect(await infoWith(snapshot(monitorDir(), 'monitor-1'))).toBe('CERT_REVOKED');
      const again = await startUi();
      try {
        await expect.poll(async () => upOf(await again.metrics()), { timeout: 60_000 }).toBe('1');
        expect(await validSerial('monitor local')).not.toBe(old);
        await vi.waitFor(() => expect(again.ui.stderr()).toContain(`gaxx: the monitor certificate ${old} in ${monitorDir()} is revoked: issued a new one`), {
          timeout: 30_000,
          interval: 50,
        });
      } finally {
        again.ui.kill('SIGINT');
        await again.ui.done;
      }
      expect(said).toContain(`this is gaxx's local monitor certificate (${monitorDir()})`);
    },
    LONG,
  );

  it(
    'revoked while `gaxx ui` runs: it goes on with a new one, and the agent stays up',
    async () => {
      const { ui, metrics } = await startUi();
      try {
        await expect.poll(async () => upOf(await metrics()), { timeout: 60_000 }).toBe('1');
        const old = await validSerial('monitor local');
        const inUse = snapshot(monitorDir(), 'monitor-2');
        await revoke(old);
        // The agent refuses the one the dashboard was using, on every call.
        expect(await infoWith(inUse)).toBe('CERT_REVOKED');
        await expect.poll(() => validSerial('monitor local'), { timeout: 60_000 }).not.toBe(old);
        const fresh = await validSerial('monitor local');
        await expect.poll(() => ui.stderr(), { timeout: 60_000 }).toContain(`issued a new one from the local CA, serial ${fresh}`);
        await expect.poll(async () => upOf(await metrics()), { timeout: 60_000 }).toBe('1');
      } finally {
        ui.kill('SIGINT');
        await ui.done;
      }
    },
    LONG,
  );
});

describe('a revoked operator certificate', () => {
  it(
    'is refused by exec and run before anything is sent, naming `gaxx init`, which renews it',
    async () => {
      const old = await validSerial('operator alice');
      const said = await revoke(old);
      const ex = await w.gaxx(['exec', '--agent', agentAddress, '--no-stdin', '--', 'true']);
      expect(ex.code, ex.stderr).toBe(exitCodeFor('CERT_REVOKED'));
      expect(ex.stderr).toContain(`the operator certificate ${old} in ${join(w.home, 'config', 'operator')} is revoked`);
      expect(ex.stderr).toContain("run 'gaxx init'");
      const run = await w.gaxx(['run', '--fleet', FLEET, '--', 'true']);
      expect(run.code, run.stderr).toBe(exitCodeFor('CERT_REVOKED'));
      expect(run.stderr).toContain("run 'gaxx init'");
      const init = await w.gaxx(['init']);
      expect(init.code, init.stderr).toBe(0);
      expect(init.stdout).toMatch(/^operator {2}renewed .*spiffe:\/\/gaxx\/operator\/alice/m);
      expect(await validSerial('operator alice')).not.toBe(old);
      const ok = await w.gaxx(['run', '--fleet', FLEET, '--', 'true']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(said).toContain(`this is your operator certificate (${join(w.home, 'config', 'operator')}): run 'gaxx init'`);
    },
    LONG,
  );
});
