// A fleet command (status, cp) reads the operator's certificate once: every agent it talks to
// shares one bundle, and so one TLS context (certs sharedSecureContext).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FleetCa, sharedSecureContext } from '../../certs/index.js';
import { loadConfig } from '../../cli/config.js';
import { operatorCreds } from '../../cli/fleet/targets.js';
import { isGaxxError } from '../../proto/index.js';
import { issueCertDir } from '../helpers/pki.js';

const dir = mkdtempSync(join(tmpdir(), 'gaxx-opcreds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const configOf = (home: string) => loadConfig({ homeDir: '/home/u', userName: 'u', argv: [], env: { GAXX_HOME: home }, readFile: () => undefined });

describe('operatorCreds', () => {
  it('reads the cert dir once per command, so its agents share one TLS context', async () => {
    const config = configOf(join(dir, 'home'));
    const { ca } = await FleetCa.init(join(dir, 'ca'));
    await issueCertDir(ca, config.paths.operatorCertDir, { identity: { role: 'operator', name: 'op' } });
    const a = operatorCreds(config);
    expect(operatorCreds(config)).toBe(a);
    expect(sharedSecureContext(operatorCreds(config))).toBe(sharedSecureContext(a));
    // Another command (config) reads it afresh.
    const other = operatorCreds(configOf(join(dir, 'home')));
    expect(other).not.toBe(a);
    expect(other.certPem.equals(a.certPem)).toBe(true);
  });

  it('says to run gaxx init when there is no operator certificate, and does not remember the failure', async () => {
    const config = configOf(join(dir, 'empty'));
    let err: unknown;
    try {
      operatorCreds(config);
    } catch (e) {
      err = e;
    }
    expect(isGaxxError(err, 'NOT_FOUND') && err.message).toMatch(/run 'gaxx init' first/);
    const { ca } = await FleetCa.init(join(dir, 'ca2'));
    await issueCertDir(ca, config.paths.operatorCertDir, { identity: { role: 'operator', name: 'op' } });
    expect(operatorCreds(config).certPem.length).toBeGreaterThan(0);
  });
});
