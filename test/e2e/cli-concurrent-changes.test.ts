/**
 * gaxx commands run at the same time against one home (two terminals, a script's parallel jobs):
 * each change of a shared file is made whole and none is lost. Before, four `gaxx init` at once
 * made four CAs (the operator certificate named one that did not stay, and `certs list` refused
 * the revocation list), ten `certs issue` at once kept six records (the others could no longer be
 * revoked: "no certificate with serial ... was issued by this CA"), and revokes at once reported
 * success for serials the list then did not hold.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { CLI_MAIN, entryNodeFlags, gaxxEnv, runGaxx, type CliRun } from '../helpers/cli.js';

let home: string;
const gaxx = (args: string[]): Promise<CliRun> => runGaxx(args, { home });
const cfg = (...p: string[]) => join(home, 'config', ...p);

/** A fresh home for each case: a case does not build on what another made. */
const freshHome = (): void => {
  home = mkdtempSync(join(tmpdir(), 'gaxx-e2e-concurrent-'));
  homes.push(home);
};
const homes: string[] = [];

interface Listed {
  serial: string;
  identity: string;
  status: string;
}
async function listed(): Promise<Listed[]> {
  const r = await gaxx(['certs', 'list', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Listed[];
}

afterAll(() => {
  for (const h of homes) rmSync(h, { recursive: true, force: true });
});

describe('commands at once on one home', () => {
  it('four gaxx init at once make one CA, one SSH key and one operator certificate, which every one of them reports', async () => {
    freshHome();
    const runs = await Promise.all([1, 2, 3, 4].map(() => gaxx(['init', '--json'])));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const results = runs.map(
      (r) =>
        JSON.parse(r.stdout) as {
          ca: { created: boolean; fingerprint256: string };
          ssh: { created: boolean; fingerprint: string };
          operator: { created: boolean; serial: string };
        },
    );
    expect(results.filter((j) => j.ca.created)).toHaveLength(1);
    expect(results.filter((j) => j.ssh.created)).toHaveLength(1);
    expect(results.filter((j) => j.operator.created)).toHaveLength(1);
    const ca = new X509Certificate(readFileSync(cfg('ca', 'ca.pem')));
    expect(new Set(results.map((j) => j.ca.fingerprint256))).toEqual(new Set([ca.fingerprint256]));
    expect(new Set(results.map((j) => j.ssh.fingerprint)).size).toBe(1);
    expect(new Set(results.map((j) => j.operator.serial)).size).toBe(1);
    const op = new X509Certificate(readFileSync(cfg('operator', 'cert.pem')));
    expect(op.verify(ca.publicKey)).toBe(true);
    const all = await listed();
    expect(all.map((c) => c.identity)).toEqual([expect.stringMatching(/^spiffe:\/\/gaxx\/operator\//)]);
    // No lock or claim file is left behind.
    expect(readdirSync(cfg()).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(readdirSync(cfg('ca')).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('gaxx init on a read-only config dir that holds a whole installation says what exists (no lock can be made there, and none is needed); a revoke there fails on its own write', () => {
    freshHome();
    const made = spawnSync(process.execPath, [...entryNodeFlags(CLI_MAIN), CLI_MAIN, 'init'], { env: gaxxEnv({ home }), encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const serial = (JSON.parse(readFileSync(cfg('ca', 'issued.json'), 'utf8')) as Array<{ serial: string }>)[0]?.serial as string;
    // The config dir bound read-only over itself, in a mount namespace of the commands' own.
    const script = [
      'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" || exit 99',
      's="$1"; shift',
      '"$@" init --json; echo "init $?"',
      '"$@" certs revoke "$s" --no-push --json; echo "revoke $?"',
    ].join('\n');
    const gaxxArgv = [process.execPath, ...entryNodeFlags(CLI_MAIN), CLI_MAIN];
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, cfg(), serial, ...gaxxArgv], {
      env: gaxxEnv({ home }),
      encoding: 'utf8',
    });
    expect(r.stdout, r.stderr).toContain('init 0');
    expect(r.stdout).toContain(`revoke ${exitCodeFor('FILE_ACCESS')}`);
    expect(r.stdout).toMatch(/"errno":\s*"EROFS"|read-only file system/);
    const init = JSON.parse(r.stdout.slice(0, r.stdout.indexOf('init 0'))) as { ca: { created: boolean }; operator: { created: boolean } };
    expect([init.ca.created, init.operator.created]).toEqual([false, false]);
  });

  it('eight certs issue at once are all recorded, and eight revokes at once all land in the signed list', async () => {
    freshHome();
    const init = await gaxx(['init']);
    expect(init.code, init.stderr).toBe(0);
    const names = Array.from({ length: 8 }, (_, i) => `m${i}`);
    const issued = await Promise.all(names.map((n) => gaxx(['certs', 'issue', '--role', 'monitor', '--name', n, '--out', join(home, n), '--json'])));
    for (const r of issued) expect(r.code, r.stderr).toBe(0);
    const serials = issued.map((r) => (JSON.parse(r.stdout) as { serial: string }).serial);
    const recorded = new Set((await listed()).map((c) => c.serial));
    expect(serials.filter((s) => !recorded.has(s))).toEqual([]);

    const revokes = await Promise.all(serials.map((s) => gaxx(['certs', 'revoke', s, '--no-push'])));
    for (const r of revokes) expect(r.code, r.stderr).toBe(0);
    const status = new Map((await listed()).map((c) => [c.serial, c.status]));
    expect(serials.map((s) => status.get(s))).toEqual(serials.map(() => 'revoked'));
    const list = JSON.parse(readFileSync(cfg('ca', 'revoked.json'), 'utf8')) as { serials: string[] };
    expect([...serials].sort()).toEqual(list.serials.filter((s) => serials.includes(s)));
    expect(readdirSync(cfg('ca')).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});
