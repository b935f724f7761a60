import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateEd25519, KnownHosts, checkHostKey, entryMatches, hashHostName, parseKnownHosts } from '../../cli/ssh/index.js';
import { isGaxxError } from '../../proto/index.js';

const keyA = generateEd25519().publicKey.trim();
const keyB = generateEd25519().publicKey.trim();
const blob = (line: string) => Buffer.from(line.split(' ')[1] as string, 'base64');
const typeKey = (line: string) => line.split(' ').slice(0, 2) as [string, string];
const dir = mkdtempSync(join(tmpdir(), 'gx-kh-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isGaxxError(e) ? e.code : 'not a GaxxError';
  }
  return undefined;
}

describe('known_hosts parsing', () => {
  it('reads plain, hashed and [host]:port entries and skips comments, @cert-authority and malformed lines', () => {
    const text = [
      '# comment',
      '',
      `10.0.0.1,web1 ${keyA} a comment`,
      `[10.0.0.2]:2222 ${keyA}`,
      `${hashHostName('10.0.0.3')} ${keyA}`,
      `@cert-authority *.example ${keyB}`,
      `@revoked 10.0.0.4 ${keyB}`,
      'broken-line-without-key',
      `10.0.0.5 ssh-ed25519 not*base64`,
    ].join('\n');
    const entries = parseKnownHosts(text, 'f');
    expect(entries.map((e) => [e.hosts.startsWith('|1|') ? 'hashed' : e.hosts, e.marker ?? '', e.line])).toEqual([
      ['10.0.0.1,web1', '', 3],
      ['[10.0.0.2]:2222', '', 4],
      ['hashed', '', 5],
      ['10.0.0.4', 'revoked', 7],
    ]);
    expect(entries[0]?.comment).toBe('a comment');
  });

  it('matches hashed entries the way OpenSSH writes them (ssh-keygen -H)', () => {
    const file = join(dir, 'hashed');
    writeFileSync(file, `192.0.2.7 ${keyA}\n[192.0.2.8]:2200 ${keyA}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    const entries = parseKnownHosts(readFileSync(file, 'utf8'));
    expect(entries.every((e) => e.hosts.startsWith('|1|'))).toBe(true);
    expect(checkHostKey(entries, '192.0.2.7', 22, ...typeKey(keyA))).toBe('match');
    expect(checkHostKey(entries, '192.0.2.8', 2200, ...typeKey(keyA))).toBe('match');
    // The port is part of the name: the same host on another port is unknown.
    expect(checkHostKey(entries, '192.0.2.8', 22, ...typeKey(keyA))).toBe('unknown');
    expect(checkHostKey(entries, '192.0.2.7', 22, ...typeKey(keyB))).toBe('mismatch');
  });

  it('honours wildcards and negations', () => {
    expect(entryMatches({ hosts: '10.0.0.*,!10.0.0.9' }, '10.0.0.5', 22)).toBe(true);
    expect(entryMatches({ hosts: '10.0.0.*,!10.0.0.9' }, '10.0.0.9', 22)).toBe(false);
    expect(entryMatches({ hosts: 'web?' }, 'web1', 22)).toBe(true);
    expect(entryMatches({ hosts: 'web?' }, 'web1', 2222)).toBe(false);
    expect(entryMatches({ hosts: '[web1]:2222' }, 'web1', 2222)).toBe(true);
  });

  it('reports a revoked key as revoked even when a plain entry lists it too', () => {
    const entries = parseKnownHosts(`10.0.0.4 ${keyB}\n@revoked 10.0.0.4 ${keyB}\n`);
    expect(checkHostKey(entries, '10.0.0.4', 22, ...typeKey(keyB))).toBe('revoked');
  });

  it('does not let a @cert-authority line vouch for a host', () => {
    const entries = parseKnownHosts(`@cert-authority 10.0.0.6 ${keyA}\n`);
    expect(checkHostKey(entries, '10.0.0.6', 22, ...typeKey(keyA))).toBe('unknown');
  });
});

describe('KnownHosts files', () => {
  it('refuses unknown hosts without accept-new, records them with it, then refuses a changed key', () => {
    const own = join(dir, 'own_known_hosts');
    const user = join(dir, 'user_known_hosts');
    writeFileSync(user, `198.51.100.1 ${keyA}\n`);
    const kh = new KnownHosts(own, [user, join(dir, 'absent')]);
    expect(kh.verify('198.51.100.1', 22, blob(keyA))).toBe('match');
    expect(thrownCode(() => kh.verify('198.51.100.1', 22, blob(keyB)))).toBe('HOST_KEY_MISMATCH');
    expect(thrownCode(() => kh.verify('198.51.100.2', 2222, blob(keyA)))).toBe('HOST_KEY_UNKNOWN');
    expect(kh.verify('198.51.100.2', 2222, blob(keyA), { acceptNew: true, fleet: 'f1' })).toBe('added');
    expect(statSync(own).mode & 0o777).toBe(0o600);
    expect(kh.verify('198.51.100.2', 2222, blob(keyA))).toBe('match');
    // accept-new never overrides a known, different key.
    expect(thrownCode(() => kh.verify('198.51.100.2', 2222, blob(keyB), { acceptNew: true }))).toBe('HOST_KEY_MISMATCH');
    expect(readFileSync(user, 'utf8')).toBe(`198.51.100.1 ${keyA}\n`);
  });

  it("removes a fleet's entries and keeps the others", () => {
    const own = join(dir, 'fleet_known_hosts');
    const kh = new KnownHosts(own);
    kh.add('198.51.100.10', 22, keyA, 'alpha');
    kh.add('198.51.100.11', 22, keyB, 'alpha');
    kh.add('198.51.100.12', 22, keyA, 'beta');
    kh.add('198.51.100.10', 22, keyB, 'alpha'); // same address again: replaced, not duplicated
    expect(parseKnownHosts(readFileSync(own, 'utf8'))).toHaveLength(3);
    expect(kh.removeFleet('alpha')).toBe(2);
    expect(kh.removeFleet('alpha')).toBe(0);
    const left = parseKnownHosts(readFileSync(own, 'utf8'));
    expect(left.map((e) => e.hosts)).toEqual(['198.51.100.12']);
    expect(thrownCode(() => kh.verify('198.51.100.10', 22, blob(keyB)))).toBe('HOST_KEY_UNKNOWN');
  });
});
