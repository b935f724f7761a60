// The package's bin run as a shell runs it (its #! line): Node starts with --use-openssl-ca, so
// that a TLS context given the fleet's CA does not make Node build its own bundled trust store
// first. Trust stays the fleet CA's alone: an agent whose certificate another CA issued is
// refused.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa, writeCertDir } from '../../certs/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { CLI_MAIN, entryNodeFlags, runGaxx } from '../helpers/cli.js';

let dir: string;
let trusted: AgentProcess;
let foreign: AgentProcess;

/** An agent with a certificate of `ca`, listening on a port of its own. */
async function agentOf(ca: FleetCa, name: string): Promise<AgentProcess> {
  const made = await ca.issue({ identity: { role: 'agent', fleet: 'adhoc', host: name }, hosts: ['127.0.0.1'] });
  const certs = join(dir, `${name}-certs`);
  mkdirSync(certs, { mode: 0o700 });
  writeCertDir(certs, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem });
  return startAgent({ certsDir: certs });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-bin-'));
  const { ca } = await FleetCa.init(join(dir, 'config', 'ca'));
  const op = await ca.issue({ identity: { role: 'operator', name: 'alice' } });
  writeCertDir(join(dir, 'config', 'operator'), { certPem: op.certPem, keyPem: op.keyPem, caPem: ca.certPem });
  const other = (await FleetCa.init(join(dir, 'other-ca'))).ca;
  [trusted, foreign] = await Promise.all([agentOf(ca, 'h1'), agentOf(other, 'h2')]);
});
afterAll(async () => {
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

/** A preload (`--require` it) that records the Node flags of the process it runs in, and their reader. */
function argvRecorder(name: string): { preload: string; execArgv: () => string[] } {
  const log = join(dir, name);
  const preload = join(dir, `${name}.cjs`);
  writeFileSync(preload, `require('node:fs').writeFileSync(${JSON.stringify(log)}, JSON.stringify(process.execArgv));`);
  return { preload, execArgv: () => JSON.parse(readFileSync(log, 'utf8')) as string[] };
}

describe('the gaxx bin', () => {
  it('starts Node with --use-openssl-ca and runs a task on an agent of the fleet CA', async () => {
    const { preload, execArgv } = argvRecorder('argv');
    const r = await runGaxx(['exec', '--agent', trusted.address, '--no-stdin', '--', 'echo', 'hello'], {
      asBin: true,
      home: dir,
      env: { NODE_OPTIONS: `--require ${preload}` },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hello\n');
    expect(execArgv()).toContain('--use-openssl-ca');
  });

  it("is run by the test helpers with its #! line's Node flags, as a shell runs it", async () => {
    const bin = readFileSync(CLI_MAIN, 'latin1').slice(0, 256).split('\n')[0] as string;
    if (!bin.startsWith('#!')) return expect(entryNodeFlags(CLI_MAIN)).toEqual([]);
    expect(entryNodeFlags(CLI_MAIN)).toEqual(['--use-openssl-ca']);
    const { preload, execArgv } = argvRecorder('argv-helper');
    const r = await runGaxx(['--version'], { home: dir, nodeArgs: ['--require', preload] });
    expect(r.code).toBe(0);
    expect(execArgv()).toEqual(['--use-openssl-ca', '--require', preload]);
  });

  it('refuses an agent whose certificate another CA issued, with a clear error', async () => {
    const r = await runGaxx(['exec', '--agent', foreign.address, '--no-stdin', '--', 'true'], { asBin: true, home: dir });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/certificate/i);
    // The trusted agent still serves.
    const ok = await runGaxx(['exec', '--agent', trusted.address, '--no-stdin', '--', 'true'], { asBin: true, home: dir });
    expect(ok.code).toBe(0);
  });
});
