// The host firewall bootstrap loads (nftRuleset), applied by the real nft in a network namespace
// of this test's own (unshare -n): the agent's user cannot reach the cloud's metadata service
// (169.254.169.254, which serves the VM's user data and the SSH host key in it), root can, and
// the rest of the ruleset loads with it. Run as root, as CI is.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nftRuleset } from '../../cli/bootstrap/index.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-nft-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * In a fresh network namespace: 169.254.169.254 on lo, the ruleset loaded, a server there, then
 * a connection from root and one from uid 65534 (as the agent's user); prints what each got.
 */
const INSIDE = `
const { execFile, execFileSync } = require('node:child_process');
const net = require('node:net');
const [rules] = process.argv.slice(2);
execFileSync('ip', ['link', 'set', 'lo', 'up']);
execFileSync('ip', ['addr', 'add', '169.254.169.254/32', 'dev', 'lo']);
execFileSync('nft', ['-f', rules]);
const probe = 'const s = require("node:net").connect(80, "169.254.169.254"); s.on("data", (d) => { process.stdout.write(String(d)); s.destroy(); }); s.on("error", (e) => process.stdout.write(e.code));';
// Each probe in a process of its own, started without blocking this one, which serves them.
const run = (file, args) => new Promise((resolve) => execFile(file, args, { encoding: 'utf8', timeout: 20000 }, (_e, out) => resolve(out)));
const server = net.createServer((s) => s.end('user-data')).listen(80, '169.254.169.254', async () => {
  const asRoot = await run(process.execPath, ['-e', probe]);
  const asAgent = await run('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '-e', probe]);
  process.stdout.write(JSON.stringify({ asRoot, asAgent }));
  server.close();
});
`;

describe('the host firewall', () => {
  it("keeps the agent's user from the metadata service; root still reaches it", () => {
    const rules = join(dir, 'gaxx.nft');
    writeFileSync(rules, nftRuleset(['198.51.100.7'], ['198.51.100.9'], 'nobody'));
    const script = join(dir, 'inside.cjs');
    writeFileSync(script, INSIDE);
    const r = spawnSync('unshare', ['-n', process.execPath, script, rules], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ asRoot: 'user-data', asAgent: 'ECONNREFUSED' });
  });
});
