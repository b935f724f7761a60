/**
 * What a first-time user meets: errors that say what happened and what to do (with their exit
 * codes), cert commands that do not destroy or mislabel anything, and flags that work where a
 * user puts them. The built CLI and agent, real processes.
 */
import { chmodSync, chownSync, existsSync, lchownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa, writeCertDir } from '../../certs/index.js';
import { exitCodeFor } from '../../proto/index.js';
import { runAgentCli, runAgentExpectFailure } from '../helpers/agent.js';
import { runGaxx, spawnGaxx } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

let root: string;
let home: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'gaxx-first-use-'));
  home = join(root, 'home');
  const r = await runGaxx(['init', '--name', 'alice'], { home });
  expect(r.code, r.stderr).toBe(0);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('errors name the problem and the fix', () => {
  it('an unwritable GAXX_HOME is FILE_ACCESS (exit 3), not an internal error', async () => {
    const ro = join(root, 'ro');
    mkdirSync(ro, { mode: 0o555 });
    chmodSync(root, 0o711);
    // Root ignores modes: run the CLI as nobody so the directory really is unwritable.
    const r = await runGaxx(['init'], { home: join(ro, 'gaxx'), ...(process.getuid?.() === 0 ? { user: { uid: 65534, gid: 65534 } } : {}) });
    expect(r.stderr).toContain('[FILE_ACCESS]');
    expect(r.stderr).not.toContain('internal error');
    expect(r.code).toBe(exitCodeFor('FILE_ACCESS'));
  });

  it('a world-writable GAXX_HOME is refused (INSECURE_FILE_MODE), and works once fixed', async () => {
    const shared = join(root, 'shared');
    mkdirSync(shared, { mode: 0o700 });
    chmodSync(shared, 0o777);
    const r = await runGaxx(['certs', 'list'], { home: shared });
    expect(r.code).toBe(exitCodeFor('INSECURE_FILE_MODE'));
    chmodSync(shared, 0o700);
    expect((await runGaxx(['init'], { home: shared })).code).toBe(0);
  });

  // Another local user who owns the home, a dir above it, or a symlink on the way could swap in a
  // CA and operator key of their own, and with them run commands on every fleet of this home.
  it.runIf(process.getuid?.() === 0)(
    'a GAXX_HOME another user owns, or reaches through a dir or symlink of theirs, is refused (INSECURE_FILE_MODE) before anything is made there; so is a key of theirs',
    async () => {
      const NOBODY = 65534;
      const pub = join(root, 'pub');
      mkdirSync(pub);
      chmodSync(pub, 0o1777);
      const theirs = (path: string, mode = 0o755): string => {
        mkdirSync(path, { recursive: true });
        chmodSync(path, mode);
        chownSync(path, NOBODY, NOBODY);
        return path;
      };
      const ownedHome = theirs(join(pub, 'squatted'));
      const configOnly = join(pub, 'mixed');
      theirs(join(configOnly, 'config'));
      const below = join(theirs(join(pub, 'their-dir')), 'home');
      mkdirSync(below, { mode: 0o700 });
      const openDir = join(root, 'open');
      mkdirSync(openDir);
      chmodSync(openDir, 0o777);
      const underOpen = join(openDir, 'home');
      mkdirSync(underOpen, { mode: 0o700 });
      const target = join(root, 'mine');
      mkdirSync(target, { mode: 0o700 });
      const link = join(pub, 'link');
      symlinkSync(target, link);
      lchownSync(link, NOBODY, NOBODY);
      for (const [home, where] of [
        [ownedHome, ownedHome],
        [configOnly, join(configOnly, 'config')],
        [below, join(pub, 'their-dir')],
        [link, link],
      ] as const) {
        const r = await runGaxx(['init', '--name', 'root'], { home });
        expect(r.code, `${home}: ${r.stderr}`).toBe(exitCodeFor('INSECURE_FILE_MODE'));
        expect(r.stderr).toContain(`${where}`);
        expect(r.stderr).toMatch(/belongs to uid 65534, not to this user \(uid 0\) or root: .*use a GAXX_HOME of your own/);
      }
      const r = await runGaxx(['init', '--name', 'root'], { home: underOpen });
      expect(r.code, r.stderr).toBe(exitCodeFor('INSECURE_FILE_MODE'));
      expect(r.stderr).toContain(`${openDir} (on the way to ${underOpen}) is writable by every user without its sticky bit`);
      // Nothing was made in any of them.
      for (const home of [ownedHome, below, underOpen, target]) expect(existsSync(join(home, 'config', 'ca'))).toBe(false);

      // A home of one's own under the sticky dir is fine; a key file another user owns in it is not.
      const good = join(pub, 'good');
      mkdirSync(good, { mode: 0o700 });
      expect((await runGaxx(['init', '--name', 'root'], { home: good })).code).toBe(0);
      const caKey = join(good, 'config', 'ca', 'ca-key.pem');
      chownSync(caKey, NOBODY, NOBODY);
      const issue = await runGaxx(['certs', 'issue', '--role', 'monitor', '--name', 'm', '--out', join(good, 'm')], { home: good });
      expect(issue.code, issue.stderr).toBe(exitCodeFor('INSECURE_FILE_MODE'));
      expect(issue.stderr).toContain(`CA key ${caKey} belongs to uid 65534`);
      chownSync(caKey, 0, 0);
      expect((await runGaxx(['certs', 'issue', '--role', 'monitor', '--name', 'm', '--out', join(good, 'm')], { home: good })).code).toBe(0);
    },
  );

  it('an agent address with nothing listening is UNAVAILABLE (exit 12), said without gRPC internals', async () => {
    const r = await runGaxx(['exec', '--agent', '127.0.0.1:1', '--no-stdin', '--', 'true'], { home });
    expect(r.code).toBe(exitCodeFor('UNAVAILABLE'));
    expect(r.stderr).not.toMatch(/Resolution note|No connection established|internal error/);
    // With --json the failure is on stdout too, as one object a script can read.
    const j = await runGaxx(['exec', '--agent', '127.0.0.1:1', '--no-stdin', '--json', '--', 'true'], { home });
    expect(j.code).toBe(exitCodeFor('UNAVAILABLE'));
    expect(JSON.parse(j.stdout)).toMatchObject({ error: { code: 'UNAVAILABLE', exitCode: exitCodeFor('UNAVAILABLE') } });
  });

  it('a Redis URL with nothing listening is REDIS_UNAVAILABLE (exit 12) saying the connection was refused, and a missing socket that it is missing', async () => {
    const port = await freePort();
    const r = await runGaxx(['runs'], { home, env: { GAXX_REDIS_URL: `redis://127.0.0.1:${port}` } });
    expect(r.code).toBe(exitCodeFor('REDIS_UNAVAILABLE'));
    expect(r.stderr).toMatch(
      new RegExp(`^gaxx: redis at redis://127\\.0\\.0\\.1:${port}: connection refused: is redis-server running there.*\\[REDIS_UNAVAILABLE\\]\\n$`),
    );
    const sock = await runGaxx(['runs', '--json'], { home, env: { GAXX_REDIS_URL: `unix://${join(root, 'no-such.sock')}` } });
    expect(sock.code).toBe(exitCodeFor('REDIS_UNAVAILABLE'));
    expect(JSON.parse(sock.stdout)).toMatchObject({ error: { code: 'REDIS_UNAVAILABLE', exitCode: exitCodeFor('REDIS_UNAVAILABLE') } });
    expect(sock.stderr).toMatch(/no such socket: is redis-server running/);
  });

  it('what every agent would refuse is refused before anything is sent or queued: a loader env (ENV_REFUSED), a bad --task-id (USAGE)', async () => {
    // Nothing listens at 127.0.0.1:1: a refusal that came from an agent would be UNAVAILABLE instead.
    for (const cmd of [
      ['exec', '--agent', '127.0.0.1:1', '--no-stdin'],
      ['run', '--agent', '127.0.0.1:1'],
    ]) {
      const r = await runGaxx([...cmd, '--env', 'OK=1', '--env', 'LD_PRELOAD=/tmp/x.so', '--', 'true'], { home });
      expect(r.code, r.stderr).toBe(exitCodeFor('ENV_REFUSED'));
      expect(r.stderr).toMatch(/env\.LD_PRELOAD: changes how programs load; refused \[ENV_REFUSED\]/);
      // No run was made (its id is the first line a run prints).
      expect(r.stderr).not.toMatch(/gaxx: run /);
    }
    for (const id of ['a/b', '..', 'x'.repeat(129)]) {
      const r = await runGaxx(['exec', '--agent', '127.0.0.1:1', '--no-stdin', '--task-id', id, '--', 'true'], { home });
      expect(r.code, r.stderr).toBe(exitCodeFor('USAGE'));
      expect(r.stderr).toContain(`--task-id '${id}' must be 1-128 characters of [A-Za-z0-9._-], not . or ..`);
    }
  });

  it("an exception thrown in a callback is one line (exit 70), not Node's dump of the minified source line it came from", async () => {
    // A preload that throws from a callback, as a library's may, once the CLI reads its stdin (a
    // pipe the test keeps open: the CLI is waiting there); the long comment stands for a bundle's
    // minified line, which Node's own handler prints in full.
    const preload = join(root, 'throws-later.cjs');
    writeFileSync(
      preload,
      [
        "const d = Object.getOwnPropertyDescriptor(process, 'stdin');",
        'let armed = false;',
        'Object.defineProperty(process, "stdin", { configurable: true, get() {',
        "  if (!armed) { armed = true; setImmediate(() => { throw new Error('thrown in a callback'); }); }",
        '  return d.get.call(process);',
        `} }); /* ${'x'.repeat(20_000)} */`,
        '',
      ].join('\n'),
    );
    const args = ['exec', '--agent', '127.0.0.1:1', '--', 'true'];
    for (const debug of [false, true]) {
      const p = spawnGaxx(args, { home, stdin: 'pipe', env: { NODE_OPTIONS: `--require ${preload}`, ...(debug ? { GAXX_DEBUG: '1' } : {}) } });
      const r = await p.done;
      p.child.stdin?.end();
      expect(r.code, r.stderr.slice(0, 500)).toBe(70);
      if (!debug) expect(r.stderr).toBe('gaxx: internal error (this is a bug): thrown in a callback\n');
      else {
        // The stack is there for whoever asks, still without the source line.
        expect(r.stderr).toContain('throws-later.cjs');
        expect(r.stderr.length).toBeLessThan(5000);
      }
    }
  });

  it('huge durations and counts are USAGE before anything is sent or started: no false UNAVAILABLE, no vendor dump', async () => {
    for (const [args, says] of [
      [['exec', '--agent', '127.0.0.1:1', '--no-stdin', '--timeout', '1000000000h', '--', 'true'], "--timeout '1000000000h' must be at most 168h"],
      [['exec', '--agent', '127.0.0.1:1', '--no-stdin', '--connect-timeout-ms', '3000000000', '--', 'true'], '--connect-timeout-ms'],
      [['run', '--agent', '127.0.0.1:1', '--timeout', '169h', '--', 'true'], "--timeout '169h' must be at most 168h"],
      [['status', '--agent', '127.0.0.1:1', '--timeout', '600h'], "--timeout '600h' must be at most 596h"],
      [['spawn', '--provider', 'local', '--count', '99999999', '--fleet', 'x'], "--count '99999999' must be a whole number from 1 to 1000"],
    ] as const) {
      const r = await runGaxx(args, { home });
      expect(r.code, r.stderr).toBe(exitCodeFor('USAGE'));
      expect(r.stderr).toContain(says);
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    }
  });

  it('gaxx run in a home without gaxx init is NOT_FOUND, said before an embedded redis-server is started there', async () => {
    const bare = join(root, 'never-initialized');
    for (const args of [
      ['run', '--agent', '127.0.0.1:1', '--', 'true'],
      ['run', '--resume', 'rnope'],
    ]) {
      const r = await runGaxx(args, { home: bare });
      expect(r.code, r.stderr).toBe(exitCodeFor('NOT_FOUND'));
      expect(r.stderr).toContain('no operator certificate in');
      expect(r.stderr).toContain("run 'gaxx init' first");
    }
    expect(existsSync(join(bare, 'state', 'redis'))).toBe(false);
  });

  it('gaxx-agent with a data dir it cannot create is FILE_ACCESS (exit 3)', async () => {
    const ca = FleetCa.open(join(home, 'config', 'ca'));
    const made = await ca.issue({ identity: { role: 'agent', fleet: 'f', host: 'h' }, hosts: ['127.0.0.1'] });
    const certs = join(root, 'agent-certs');
    writeCertDir(certs, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem, revokedText: ca.revocationListText() });
    chmodSync(root, 0o711);
    // As in production: an unprivileged agent (the fixture runs it as nobody when we are root),
    // here with a data dir under a root-owned directory, which it makes itself.
    const dataDir = process.getuid?.() === 0 ? join(root, 'root-owned', 'data') : '/proc/gaxx-cannot-exist/data';
    mkdirSync(join(root, 'root-owned'), { mode: 0o755 });
    const r = await runAgentExpectFailure({ certsDir: certs, dataDir, ownDirs: true });
    expect(r.stderr).toContain('FILE_ACCESS');
    expect(r.code).toBe(exitCodeFor('FILE_ACCESS'));
  });

  it('gaxx-agent audit --help explains itself', async () => {
    const r = await runAgentCli(['audit', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--since');
  });
});

describe('cert commands keep what they should', () => {
  it('certs issue refuses a non-empty --out without --force, and a bad --host', async () => {
    const out = join(root, 'not-empty');
    mkdirSync(out);
    writeFileSync(join(out, 'notes.txt'), 'mine');
    const args = ['certs', 'issue', '--role', 'agent', '--fleet', 'web', '--name', 'h1', '--host', '127.0.0.1', '--out', out];
    expect((await runGaxx(args, { home })).code).toBe(exitCodeFor('ALREADY_EXISTS'));
    expect(readFileSync(join(out, 'notes.txt'), 'utf8')).toBe('mine');
    expect((await runGaxx([...args, '--force'], { home })).code).toBe(0);
    const bad = ['certs', 'issue', '--role', 'agent', '--fleet', 'web', '--name', 'h2', '--out', join(root, 'h2')];
    for (const host of ['bad host', 'a..b', '-x', 'http://x'])
      expect((await runGaxx([...bad, '--host', host], { home })).code, host).toBe(exitCodeFor('USAGE'));
  });

  it('lists a certificate replaced by a newer one of the same identity as superseded', async () => {
    const mk = (dir: string) => runGaxx(['certs', 'issue', '--role', 'monitor', '--name', 'prom', '--out', join(root, dir), '--json'], { home });
    const first = JSON.parse((await mk('prom1')).stdout) as { serial: string };
    const second = JSON.parse((await mk('prom2')).stdout) as { serial: string };
    const rows = JSON.parse((await runGaxx(['certs', 'list', '--json'], { home })).stdout) as Array<{ serial: string; status: string }>;
    expect(rows.find((r) => r.serial === first.serial)?.status).toBe('superseded');
    expect(rows.find((r) => r.serial === second.serial)?.status).toBe('valid');
  });

  it('gaxx init renews an expired operator certificate under the same name', async () => {
    const h = join(root, 'renew-home');
    expect((await runGaxx(['init', '--name', 'carol'], { home: h })).code).toBe(0);
    const ca = FleetCa.open(join(h, 'config', 'ca'));
    const hourAgo = Date.now() - 3600_000;
    const old = await ca.issue({ identity: { role: 'operator', name: 'carol' }, notBefore: new Date(hourAgo - 3600_000), notAfter: new Date(hourAgo) });
    writeCertDir(join(h, 'config', 'operator'), { certPem: old.certPem, keyPem: old.keyPem, caPem: ca.certPem, revokedText: ca.revocationListText() });
    // Another user name in the environment must not rename the operator.
    const r = await runGaxx(['init', '--json'], { home: h, env: { USER: 'mallory' } });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).operator).toMatchObject({ renewed: true, identity: 'spiffe://gaxx/operator/carol' });
  });
});

describe('flags where users put them', () => {
  it('global flags work before the command', async () => {
    const r = await runGaxx(['--home', home, 'certs', 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).some((x: { identity: string }) => x.identity === 'spiffe://gaxx/operator/alice')).toBe(true);
    expect((await runGaxx(['--home'])).code).toBe(exitCodeFor('USAGE'));
  });
});
