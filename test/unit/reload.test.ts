// Certificate reload on real files in a temp dir.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertWatcher, renewalDueWithJitter } from '../../agent/auth/reload.js';
import { CA_KEY_FILE, FleetCa, loadCertDir, signRevocationList, writeCertDir, type CertBundle } from '../../certs/index.js';
import { isGaxxError } from '../../proto/index.js';

let dir: string;
let ca: FleetCa;
let ca2: FleetCa;
const agentId = { role: 'agent' as const, fleet: 'f', host: 'h1' };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-reload-'));
  ca = (await FleetCa.init(join(dir, 'ca'))).ca;
  ca2 = (await FleetCa.init(join(dir, 'ca2'))).ca;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function until(cond: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => (cond() ? resolve() : Date.now() - t0 > ms ? reject(new Error('condition not met in time')) : setTimeout(tick, 20));
    tick();
  });
}

const caKey = (name: string) => readFileSync(join(dir, name, CA_KEY_FILE), 'utf8');

async function setup(name: string, watchFs: boolean) {
  const certs = join(dir, name);
  const first = await ca.issue({ identity: agentId, hosts: ['127.0.0.1'] });
  writeCertDir(certs, { certPem: first.certPem, keyPem: first.keyPem, caPem: ca.certPem });
  const reloads: CertBundle[] = [];
  const errors: unknown[] = [];
  const w = new CertWatcher(certs, loadCertDir(certs), {
    debounceMs: 50,
    pollMs: 100,
    watch: watchFs,
    onReload: (b) => reloads.push(b),
    onError: (e) => errors.push(e),
  });
  w.start();
  return { certs, w, reloads, errors, first };
}

describe('cert watcher', () => {
  it('swaps in a rotated cert, keeps the old one when the new dir is invalid, picks up revocations', async () => {
    const { certs, w, reloads, errors, first } = await setup('watch', true);
    try {
      const second = await ca.issue({ identity: agentId, hosts: ['127.0.0.1'] });
      writeCertDir(certs, { certPem: second.certPem, keyPem: second.keyPem, caPem: ca.certPem });
      await until(() => reloads.length === 1);
      expect(w.current().summary.serial).toBe(second.serial);

      // A cert from another CA: refused, reported once, the previous bundle stays.
      const foreign = await ca2.issue({ identity: agentId });
      writeCertDir(certs, { certPem: foreign.certPem, keyPem: foreign.keyPem, caPem: ca.certPem });
      await until(() => errors.length === 1);
      expect(isGaxxError(errors[0]) && errors[0].code).toBe('CERT_INVALID');
      expect(w.current().summary.serial).toBe(second.serial);
      w.check();
      expect(errors).toHaveLength(1);

      // Back to a valid cert plus a signed revocation list.
      writeCertDir(certs, { certPem: second.certPem, keyPem: second.keyPem, caPem: ca.certPem, revokedText: signRevocationList(caKey('ca'), [first.serial]) });
      await until(() => reloads.length === 2);
      expect(w.current().revoked.has(first.serial)).toBe(true);
      // Unchanged content: no reload.
      expect(w.check()).toBe(false);
    } finally {
      w.stop();
    }
  });

  it('notices changes by polling alone, and accepts a CA overlap bundle', async () => {
    const { certs, w, reloads } = await setup('poll', false);
    try {
      const next = await ca2.issue({ identity: agentId, hosts: ['127.0.0.1'] });
      // Old and new CA both trusted; the old CA's revocation list still verifies.
      writeCertDir(certs, {
        certPem: next.certPem,
        keyPem: next.keyPem,
        caPem: `${ca.certPem}${ca2.certPem}`,
        revokedText: signRevocationList(caKey('ca'), ['ABCDEF']),
      });
      await until(() => reloads.length === 1);
      expect(w.current().summary.serial).toBe(next.serial);
      expect(w.current().cas).toHaveLength(2);
      expect(w.current().revoked.has('ABCDEF')).toBe(true);
      // A revocation list signed by nobody trusted is refused; the old list stays in force.
      writeFileSync(join(certs, 'revoked.json'), (await FleetCa.init(join(dir, 'ca3')), signRevocationList(caKey('ca3'), [])));
      expect(w.check()).toBe(false);
      expect(w.current().revoked.has('ABCDEF')).toBe(true);
    } finally {
      w.stop();
    }
  });
});

describe('renewal', () => {
  it('is due at about two thirds of the lifetime, with per-agent jitter', async () => {
    const made = await ca.issue({ identity: agentId, validityMs: 3 * 86_400_000 });
    const cert = new X509Certificate(made.certPem);
    const from = Date.parse(cert.validFrom);
    const life = Date.parse(cert.validTo) - from;
    expect(renewalDueWithJitter(cert, 'h1', from + life * 0.5)).toBe(false);
    expect(renewalDueWithJitter(cert, 'h1', from + life * 0.75)).toBe(true);
    const cut = (seed: string) => [...Array(101).keys()].find((i) => renewalDueWithJitter(cert, seed, from + (life * i) / 100));
    const cuts = new Set(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map(cut));
    expect(cuts.size).toBeGreaterThan(1);
    for (const c of cuts) {
      expect(c).toBeGreaterThanOrEqual(61);
      expect(c).toBeLessThanOrEqual(72);
    }
  });
});
