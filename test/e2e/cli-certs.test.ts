// The built CLI (node dist/cli/main.js) against a throwaway GAXX_HOME: init, certs issue/list/revoke.
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyRevocationList } from '../../certs/index.js';
import { exitCodeFor } from '../../proto/index.js';
import { runGaxx, type CliRun } from '../helpers/cli.js';

let home: string;

const gaxx = (args: string[], env: Record<string, string> = {}): Promise<CliRun> => runGaxx(args, { home, env });
const mode = (p: string) => statSync(p).mode & 0o777;
const cfg = (...p: string[]) => join(home, 'config', ...p);

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'gaxx-e2e-cli-'));
  const r = await gaxx(['init', '--name', 'alice']);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('gaxx init', () => {
  it('creates the CA, SSH key pair and operator cert with private files 0600', () => {
    expect(mode(cfg('ca', 'ca-key.pem'))).toBe(0o600);
    expect(mode(cfg('ssh', 'id_ed25519'))).toBe(0o600);
    expect(mode(cfg('operator', 'key.pem'))).toBe(0o600);
    expect(readFileSync(cfg('ssh', 'id_ed25519'), 'utf8')).toContain('BEGIN OPENSSH PRIVATE KEY');
    expect(readFileSync(cfg('ssh', 'id_ed25519.pub'), 'utf8')).toMatch(/^ssh-ed25519 /);
    const op = new X509Certificate(readFileSync(cfg('operator', 'cert.pem')));
    expect(op.subjectAltName).toBe('URI:spiffe://gaxx/operator/alice');
    expect(op.verify(new X509Certificate(readFileSync(cfg('ca', 'ca.pem'))).publicKey)).toBe(true);
  });

  it('is harmless to re-run: nothing is regenerated', async () => {
    const before = ['ca/ca.pem', 'ca/ca-key.pem', 'ssh/id_ed25519', 'operator/cert.pem'].map((p) => readFileSync(cfg(p), 'utf8'));
    const fp = new X509Certificate(before[0] as string).fingerprint256;
    const r = await gaxx(['init', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.ca).toMatchObject({ created: false, fingerprint256: fp });
    expect(j.ssh.created).toBe(false);
    expect(j.operator.created).toBe(false);
    const after = ['ca/ca.pem', 'ca/ca-key.pem', 'ssh/id_ed25519', 'operator/cert.pem'].map((p) => readFileSync(cfg(p), 'utf8'));
    expect(after).toEqual(before);
  });

  it('refuses a CA key or SSH key readable by others (INSECURE_FILE_MODE), then works again', async () => {
    for (const key of [cfg('ca', 'ca-key.pem'), cfg('ssh', 'id_ed25519')]) {
      chmodSync(key, 0o644);
      const r = await gaxx(['init']);
      expect(r.code).toBe(exitCodeFor('INSECURE_FILE_MODE'));
      expect(r.stderr).toMatch(/\[INSECURE_FILE_MODE\]\n$/);
      chmodSync(key, 0o600);
    }
    chmodSync(cfg('ca', 'ca-key.pem'), 0o644);
    const issue = await gaxx(['certs', 'issue', '--role', 'monitor', '--name', 'm', '--out', join(home, 'm')]);
    expect(issue.code).toBe(exitCodeFor('INSECURE_FILE_MODE'));
    chmodSync(cfg('ca', 'ca-key.pem'), 0o600);
    expect((await gaxx(['init'])).code).toBe(0);
  });
});

describe('gaxx certs', () => {
  const issued: Record<string, string> = {};

  it('issues a cert dir for each role with the right SANs', async () => {
    const cases = [
      {
        role: 'agent',
        args: ['--fleet', 'web', '--name', 'h1', '--host', '127.0.0.1', '--host', 'h1.test'],
        san: ['URI:spiffe://gaxx/agent/web/h1', 'IP Address:127.0.0.1', 'DNS:h1.test'],
      },
      { role: 'operator', args: ['--name', 'bob'], san: ['URI:spiffe://gaxx/operator/bob'] },
      { role: 'scheduler', args: ['--name', 's1', '--days', '2'], san: ['URI:spiffe://gaxx/scheduler/s1'] },
      { role: 'monitor', args: ['--name', 'prom'], san: ['URI:spiffe://gaxx/monitor/prom'] },
    ];
    const ca = new X509Certificate(readFileSync(cfg('ca', 'ca.pem')));
    for (const c of cases) {
      const out = join(home, 'issued', c.role);
      const r = await gaxx(['certs', 'issue', '--role', c.role, ...c.args, '--out', out, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout);
      const cert = new X509Certificate(readFileSync(join(out, 'cert.pem')));
      expect(cert.subjectAltName?.split(', ').sort()).toEqual([...c.san].sort());
      expect(cert.serialNumber.replace(/^0+/, '')).toBe(j.serial);
      expect(new Date(cert.validTo).getTime()).toBeCloseTo(Date.parse(j.notAfter), -4);
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(cert.ca).toBe(false);
      expect(mode(join(out, 'key.pem'))).toBe(0o600);
      expect(readFileSync(join(out, 'ca.pem'), 'utf8')).toBe(readFileSync(cfg('ca', 'ca.pem'), 'utf8'));
      verifyRevocationList(readFileSync(join(out, 'revoked.json'), 'utf8'), [ca]);
      issued[c.role] = j.serial;
    }
    const days = new X509Certificate(readFileSync(join(home, 'issued', 'scheduler', 'cert.pem')));
    expect(Date.parse(days.validTo) - Date.now()).toBeLessThan(2 * 24 * 3600 * 1000 + 60_000);
  });

  it('refuses flags that do not fit the role (USAGE)', async () => {
    const out = join(home, 'bad');
    expect((await gaxx(['certs', 'issue', '--role', 'agent', '--name', 'h1', '--out', out])).code).toBe(2);
    expect((await gaxx(['certs', 'issue', '--role', 'scheduler', '--fleet', 'web', '--name', 's', '--out', out])).code).toBe(2);
    expect((await gaxx(['certs', 'issue', '--role', 'root', '--name', 's', '--out', out])).code).toBe(2);
    expect((await gaxx(['certs', 'issue', '--role', 'monitor', '--name', 's'])).code).toBe(2);
    expect((await gaxx(['certs', 'issue', '--role', 'monitor', '--name', 's', '--days', '0', '--out', out])).code).toBe(2);
  });

  it('--out naming a file is USAGE naming the flag, not an internal error; the file is left as it was', async () => {
    const file = join(home, 'a-file.txt');
    writeFileSync(file, 'keep');
    const r = await gaxx(['certs', 'issue', '--role', 'monitor', '--name', 'y', '--out', file, '--json']);
    expect(r.code, r.stderr).toBe(exitCodeFor('USAGE'));
    expect((JSON.parse(r.stdout) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'USAGE',
      message: expect.stringContaining('--out'),
    });
    // Through a file: the path cannot be a directory either.
    expect((await gaxx(['certs', 'issue', '--role', 'monitor', '--name', 'y', '--out', join(file, 'sub')])).code).toBe(exitCodeFor('FILE_ACCESS'));
    expect(readFileSync(file, 'utf8')).toBe('keep');
  });

  it('lists issued certificates as JSON', async () => {
    const r = await gaxx(['certs', 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as Array<{ serial: string; identity: string; status: string }>;
    expect(rows.find((x) => x.serial === issued.agent)).toMatchObject({ identity: 'spiffe://gaxx/agent/web/h1', status: 'valid' });
    expect(rows.find((x) => x.identity === 'spiffe://gaxx/operator/alice')?.status).toBe('valid');
    expect(rows.length).toBeGreaterThanOrEqual(5);
  });

  it('revokes: the list shows it and the signed revoked.json verifies and names it', async () => {
    const serial = issued.monitor as string;
    const r = await gaxx(['certs', 'revoke', serial.toLowerCase()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('revoked.json');
    const rows = JSON.parse((await gaxx(['certs', 'list', '--json'])).stdout) as Array<{ serial: string; status: string }>;
    expect(rows.find((x) => x.serial === serial)?.status).toBe('revoked');
    expect(rows.find((x) => x.serial === issued.agent)?.status).toBe('valid');
    const ca = new X509Certificate(readFileSync(cfg('ca', 'ca.pem')));
    const list = verifyRevocationList(readFileSync(cfg('ca', 'revoked.json'), 'utf8'), [ca]);
    expect([...list.serials]).toEqual([serial]);
    expect((await gaxx(['certs', 'revoke', 'ABCDEF'])).code).toBe(exitCodeFor('NOT_FOUND'));
    expect((await gaxx(['certs', 'revoke', 'not-hex'])).code).toBe(exitCodeFor('INVALID_ARGUMENT'));
  });
});

describe('gaxx usage and transport errors', () => {
  it('an unknown command exits 2', async () => {
    const r = await gaxx(['launch-rockets']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^gaxx: .*\[USAGE\]\n$/);
  });

  it('without GAXX_HOME, init uses the XDG directories under HOME', async () => {
    const userHome = mkdtempSync(join(tmpdir(), 'gaxx-e2e-xdg-'));
    try {
      const r = await runGaxx(['init', '--json'], { env: { HOME: userHome } });
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ configDir: join(userHome, '.config', 'gaxx'), stateDir: join(userHome, '.local', 'state', 'gaxx') });
      expect(mode(join(userHome, '.config', 'gaxx', 'ca', 'ca-key.pem'))).toBe(0o600);
    } finally {
      rmSync(userHome, { recursive: true, force: true });
    }
  });

  it('a bad config file exits with CONFIG_INVALID', async () => {
    const other = mkdtempSync(join(tmpdir(), 'gaxx-e2e-cfg-'));
    try {
      const { mkdirSync, writeFileSync } = await import('node:fs');
      mkdirSync(join(other, 'config'));
      writeFileSync(join(other, 'config', 'config.json'), '{"agent":{"port":0}}');
      const r = await gaxx(['certs', 'list'], { GAXX_HOME: other });
      expect(r.code).toBe(exitCodeFor('CONFIG_INVALID'));
      expect(r.stderr).toContain('agent.port');
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('exec to a port where nothing listens is UNAVAILABLE', async () => {
    const r = await gaxx(['exec', '--agent', '127.0.0.1:1', '--no-stdin', '--', 'true']);
    expect(r.code).toBe(exitCodeFor('UNAVAILABLE'));
    expect(r.stderr).toMatch(/\[UNAVAILABLE\]\n$/);
  });
});
