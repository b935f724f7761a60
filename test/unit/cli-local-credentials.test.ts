// gaxx's kept client certificates judged by the CA's current revocation list (cli/scheduler-
// credentials.ts, cli/operator-credentials.ts), on files only: a local certificate the CA
// revoked, or one left unusable (another gaxx's key beside this one's certificate), is issued
// anew with a note; a source keeps the bundle in force (and the connections made with it) while
// nothing about it changed, and gives the new one once it did; a dir the user gave and the
// operator certificate are refused with what to do. The e2e side (real agents refusing a revoked
// certificate) is test/e2e/cli-local-credentials.test.ts.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa, writeCertDir } from '../../certs/index.js';
import { operatorCredentials } from '../../cli/operator-credentials.js';
import { resolvePaths, type GaxxPaths } from '../../cli/paths.js';
import { schedulerCertDir, schedulerCredentialSource, schedulerCredentials } from '../../cli/scheduler-credentials.js';
import { isGaxxError } from '../../proto/index.js';

let home: string;
let paths: GaxxPaths;
let ca: FleetCa;

/** The error `fn` rejects with. */
async function failure(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('did not fail');
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'gaxx-localcreds-'));
  paths = resolvePaths({ home, homeDir: home });
  ca = (await FleetCa.init(paths.caDir)).ca;
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('the local scheduler certificate', () => {
  it('is issued once, then kept; revoked by the CA (not by its dir copy), it is issued anew with a note', async () => {
    const notes: string[] = [];
    const note = (t: string): void => void notes.push(t);
    const first = await schedulerCredentials(paths, { note });
    expect(notes).toEqual([]);
    expect((await schedulerCredentials(paths, { note })).summary.serial).toBe(first.summary.serial);
    ca.revoke(first.summary.serial);
    const next = await schedulerCredentials(paths, { note });
    expect(next.summary.serial).not.toBe(first.summary.serial);
    expect(notes).toEqual([
      `the scheduler certificate ${first.summary.serial} in ${schedulerCertDir(paths)} is revoked: issued a new one from the local CA, serial ${next.summary.serial}`,
    ]);
  });

  it('left with another key beside its certificate (two gaxx re-issuing at once) is issued anew, not refused', async () => {
    const dir = schedulerCertDir(paths);
    const made = await ca.issue({ identity: { role: 'scheduler', name: 'local' } });
    writeCertDir(join(home, 'other'), { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem });
    copyFileSync(join(home, 'other', 'key.pem'), join(dir, 'key.pem'));
    const notes: string[] = [];
    const b = await schedulerCredentials(paths, { note: (t) => void notes.push(t) });
    expect(notes[0]).toMatch(/is not usable \(.*key\.pem does not match .*cert\.pem\): issued a new one from the local CA/);
    expect((await schedulerCredentials(paths)).summary.serial).toBe(b.summary.serial);
  });

  it('as a source: the same bundle while nothing about it changes, a new one once the CA revokes it', async () => {
    const notes: string[] = [];
    const source = await schedulerCredentialSource(paths, { note: (t) => void notes.push(t) });
    const held = await source.current();
    expect(await source.current()).toBe(held);
    // Another serial revoked: the list changed, the certificate in force did not.
    const other = await ca.issue({ identity: { role: 'monitor', name: 'x' } });
    ca.revoke(other.serial);
    expect(await source.current()).toBe(held);
    ca.revoke(held.summary.serial);
    const fresh = await source.current();
    expect(fresh.summary.serial).not.toBe(held.summary.serial);
    expect(await source.current()).toBe(fresh);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain(`${held.summary.serial} in ${schedulerCertDir(paths)} is revoked`);
  });
});

describe('certificates gaxx does not issue itself', () => {
  it('a --certs DIR the CA revoked is refused, saying what to do', async () => {
    const dir = join(home, 'given');
    const made = await ca.issue({ identity: { role: 'scheduler', name: 'g' } });
    writeCertDir(dir, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem, revokedText: ca.revocationListText() });
    expect((await schedulerCredentials(paths, { dir })).summary.serial).toBe(made.serial);
    ca.revoke(made.serial);
    const e = await failure(() => schedulerCredentials(paths, { dir }));
    expect(isGaxxError(e, 'CERT_REVOKED')).toBe(true);
    expect(e.message).toContain(`the scheduler certificate ${made.serial} in ${dir} is revoked`);
    expect(e.message).toContain(`put a new certificate in ${dir}`);
  });

  it('a revoked operator certificate is refused naming gaxx init; without the CA dir its own list alone counts', async () => {
    const made = await ca.issue({ identity: { role: 'operator', name: 'alice' } });
    writeCertDir(paths.operatorCertDir, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem, revokedText: ca.revocationListText() });
    expect(operatorCredentials(paths.operatorCertDir, paths.caDir).summary.serial).toBe(made.serial);
    ca.revoke(made.serial);
    const e = await failure(() => operatorCredentials(paths.operatorCertDir, paths.caDir));
    expect(isGaxxError(e, 'CERT_REVOKED')).toBe(true);
    expect(e.message).toContain(`the operator certificate ${made.serial} in ${paths.operatorCertDir} is revoked`);
    expect(e.message).toContain("run 'gaxx init'");
    expect(operatorCredentials(paths.operatorCertDir, undefined).summary.serial).toBe(made.serial);
  });
});
