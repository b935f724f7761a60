// The bundled agent starts from the V8 code cache the build made (gaxx-agent.cjs.v8cache beside
// gaxx-agent.cjs): the cache is installed and uploaded with the agent, and it fits the way
// agents run (this Node, the agents' Node flags, PATH only, as the agent user), so V8 uses it. A copy whose
// code no longer matches its cache ignores the cache and still works.
import { execFile } from 'node:child_process';
import { appendFileSync, chmodSync, cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAgentPayload } from '../../cli/bootstrap/payload.js';
import { AGENT_COMPANION_FILES, AGENT_NODE_FLAGS, agentBundlePath } from '../../cli/providers/agent-bundle.js';
import { AGENT_GID, AGENT_UID, agentMain, repoRoot } from '../helpers/agent.js';

const isRoot = process.getuid?.() === 0;
const tmp = mkdtempSync(join(tmpdir(), 'gaxx-agent-cache-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Loads the agent in `dir` as its entry does, with `--help`; the cache status and the exit code. */
function probe(dir: string): Promise<{ code: number; status: string; stdout: string }> {
  const script = `const v = require(${JSON.stringify(join(dir, 'vendor-load.cjs'))}); v.loadVendor('gaxx-agent.cjs');
process.on('exit', () => process.stderr.write('cache=' + v.cacheStatus('gaxx-agent.cjs')));`;
  return new Promise((done) => {
    execFile(
      process.execPath,
      [...AGENT_NODE_FLAGS, '-e', script, '--', 'gaxx-agent', '--help'],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, ...(isRoot ? { uid: AGENT_UID, gid: AGENT_GID } : {}) },
      (e, stdout, stderr) => done({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, status: /cache=(\w+)/.exec(stderr)?.[1] ?? stderr, stdout }),
    );
  });
}

describe('the agent code cache', () => {
  it('is installed beside the agent and travels in the bootstrap payload', () => {
    const installed = readdirSync(dirname(agentMain()));
    expect(installed).toEqual(expect.arrayContaining([...AGENT_COMPANION_FILES]));
    const payload = loadAgentPayload(agentBundlePath(join(repoRoot(), 'package.json'))).map((f) => basename(f.path));
    expect(payload).toEqual(expect.arrayContaining(['gaxx-agent.mjs', ...AGENT_COMPANION_FILES]));
  });

  it('is used by the installed agent, run as the agent user with a bare environment', async () => {
    const r = await probe(dirname(agentMain()));
    expect(r.status).toBe('used');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('usage: gaxx-agent');
  });

  it('is ignored when the code beside it changed, and the agent still runs', async () => {
    const dir = mkdtempSync(join(tmp, 'changed-'));
    // The agent user must reach the copy (mkdtemp makes 0700 dirs).
    for (const d of [tmp, dir]) chmodSync(d, 0o755);
    cpSync(dirname(agentMain()), dir, { recursive: true });
    appendFileSync(join(dir, 'gaxx-agent.cjs'), '\n// changed after the build\n');
    const r = await probe(dir);
    expect(r.status).toBe('stale');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('usage: gaxx-agent');
  });
});
