// gaxx from a private place: the package packed (`npm pack`, dist/bundle only) and installed
// with `npm i -g` into a 0700 directory, as a clone or a global install under root's home is.
// Its bins work; an agent run as nobody straight from there cannot even load (the reason
// local agents run from an installed copy); the same bundle installed with installAgentBundle
// serves `gaxx exec` from the private CLI.
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa, writeCertDir } from '../../certs/index.js';
import { AGENT_GID, AGENT_UID, startAgent, stopAllAgents } from '../helpers/agent.js';

const isRoot = process.getuid?.() === 0;
let priv: string;
let shared: string;
let bin: string;

function run(
  file: string,
  args: string[],
  opts: { uid?: number; gid?: number; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      file,
      args,
      { env: { PATH: process.env.PATH ?? '', ...opts.env }, ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid } : {}), timeout: 120_000 },
      (err, stdout, stderr) => {
        done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

beforeAll(async () => {
  priv = mkdtempSync(join(tmpdir(), 'gaxx-private-'));
  chmodSync(priv, 0o700);
  // Pack what `npm pack` ships (the build is already there: no scripts), install it offline.
  const pack = await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', priv], { env: { HOME: priv } });
  expect(pack.code, pack.stderr).toBe(0);
  const tgz = readdirSync(priv).find((f) => f.endsWith('.tgz')) as string;
  const prefix = join(priv, 'prefix');
  const install = await run('npm', ['install', '-g', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--prefix', prefix, join(priv, tgz)], {
    env: { HOME: priv },
  });
  expect(install.code, install.stderr).toBe(0);
  bin = join(prefix, 'bin');
  shared = mkdtempSync(join(tmpdir(), 'gaxx-private-agent-'));
}, 240_000);

afterAll(async () => {
  await stopAllAgents();
  rmSync(priv, { recursive: true, force: true });
  rmSync(shared, { recursive: true, force: true });
});

describe('a gaxx installed under a 0700 directory', () => {
  it('ships dist/bundle only, and its bins run', async () => {
    const pkgDir = join(priv, 'prefix', 'lib', 'node_modules', 'gaxx');
    expect(readdirSync(pkgDir).sort()).toEqual(['README.md', 'dist', 'package.json']);
    expect(readdirSync(join(pkgDir, 'dist'))).toEqual(['bundle']);
    const v = await run(join(bin, 'gaxx'), ['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect((await run(join(bin, 'gaxx-agent'), ['--help'])).code).toBe(0);
  });

  it.runIf(isRoot)('an agent run as nobody from there cannot load; installed with installAgentBundle it serves gaxx exec', async () => {
    const home = join(priv, 'home');
    const gaxx = (args: string[]) => run(join(bin, 'gaxx'), args, { env: { GAXX_HOME: home } });
    expect((await gaxx(['init', '--name', 'root-user'])).code).toBe(0);
    // The refusal: nobody cannot read the private install (node exits 1: module not found).
    const direct = await run(process.execPath, [join(bin, 'gaxx-agent'), '--help'], { uid: AGENT_UID, gid: AGENT_GID });
    expect(direct.code).toBe(1);
    expect(statSync(priv).mode & 0o777).toBe(0o700);
    // The agent's certificate and data live where nobody can reach them; its code is a copy.
    const ca = FleetCa.open(join(home, 'config', 'ca'));
    const made = await ca.issue({ identity: { role: 'agent', fleet: 'private', host: 'p1' }, hosts: ['127.0.0.1'] });
    const certs = join(shared, 'certs');
    mkdirSync(certs, { mode: 0o700 });
    writeCertDir(certs, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem });
    const bundle = join(priv, 'prefix', 'lib', 'node_modules', 'gaxx', 'dist', 'bundle', 'gaxx-agent.mjs');
    const agent = await startAgent({ certsDir: certs, agentBundle: bundle, metrics: false });
    const r = await gaxx(['exec', '--agent', agent.address, '--no-stdin', '--', 'sh', '-c', 'id -u; exit 3']);
    expect(r.code).toBe(3);
    expect(r.stdout.trim()).toBe(String(AGENT_UID));
  });
});
