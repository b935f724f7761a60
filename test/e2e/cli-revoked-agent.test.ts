// The built CLI against a stand-in agent (grpc-js over real mTLS) whose certificate this
// installation's CA issued and then revoked: `gaxx exec` and `gaxx cp` refuse it at the
// handshake (CERT_REVOKED, naming the serial), send it nothing, and exit with the mapped code.
// The revocation is read from the CA's own signed list: the operator cert dir's revoked.json,
// written by `gaxx init`, never learns of it.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { runGaxx, type CliRun } from '../helpers/cli.js';
import { startStandInAgent, type StandInAgent } from '../helpers/stand-in-agent.js';

let home: string;
let serial: string;
let standIn: StandInAgent;

const gaxx = (args: string[], input?: string): Promise<CliRun> => runGaxx(args, { home, ...(input === undefined ? {} : { input }) });

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'gaxx-e2e-revoked-agent-'));
  expect((await gaxx(['init', '--name', 'ops'])).code).toBe(0);
  const dir = join(home, 'impostor');
  const issued = await gaxx(['certs', 'issue', '--role', 'agent', '--fleet', 'oldfleet', '--name', 'h9', '--host', '127.0.0.1', '--out', dir, '--json']);
  expect(issued.code, issued.stderr).toBe(0);
  serial = (JSON.parse(issued.stdout) as { serial: string }).serial;
  standIn = await startStandInAgent(dir);
  writeFileSync(join(home, 'secret.txt'), 'the secret\n');
});
afterAll(async () => {
  await standIn?.close();
  rmSync(home, { recursive: true, force: true });
});

describe('an agent certificate revoked by this CA', () => {
  it('is used while it is not revoked (the stand-in answers as an agent)', async () => {
    const r = await gaxx(['exec', '--agent', standIn.address, '--no-stdin', '--', 'true']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('from the stand-in\n');
    expect(standIn.calls.map((c) => c.method)).toEqual(['Exec']);
  });

  it('is refused by `gaxx exec` once revoked: CERT_REVOKED naming the serial, its exit code, nothing sent', async () => {
    const revoked = await gaxx(['certs', 'revoke', serial]);
    expect(revoked.code, revoked.stderr).toBe(0);
    // Nothing copied: the operator's own list still revokes nothing.
    expect(JSON.parse(readFileSync(join(home, 'config', 'operator', 'revoked.json'), 'utf8')).serials).toEqual([]);
    const before = standIn.calls.length;
    const r = await gaxx(['exec', '--agent', standIn.address, '--env', 'API_TOKEN=s3cr3t', '--stdin', join(home, 'secret.txt'), '--', 'cat']);
    expect(r.code, r.stderr).toBe(exitCodeFor('CERT_REVOKED'));
    expect(r.stderr).toMatch(/\[CERT_REVOKED\]\n$/);
    expect(r.stderr).toContain(serial);
    expect(r.stdout).toBe('');
    expect(standIn.calls.slice(before)).toEqual([]);
  });

  it('is refused by `gaxx exec --json` with the code in its error object', async () => {
    const before = standIn.calls.length;
    const r = await gaxx(['exec', '--agent', standIn.address, '--json', '--no-stdin', '--', 'true']);
    expect(r.code).toBe(exitCodeFor('CERT_REVOKED'));
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'CERT_REVOKED' } });
    expect(standIn.calls.slice(before)).toEqual([]);
  });

  it('is refused by `gaxx cp`: the file is not uploaded', async () => {
    const before = standIn.calls.length;
    const r = await gaxx(['cp', '--agent', standIn.address, join(home, 'secret.txt'), ':conf/secret.txt']);
    expect(r.code, r.stderr).toBe(exitCodeFor('CERT_REVOKED'));
    expect(r.stdout + r.stderr).toContain('CERT_REVOKED');
    expect(standIn.calls.slice(before)).toEqual([]);
  });
});
