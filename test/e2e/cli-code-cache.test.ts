// The bundled CLI starts from the V8 code caches the build made: gaxx-cli.cjs.v8cache beside the
// CLI, and one beside each vendor file a command loads (BullMQ, ioredis, grpc-js, ...). A command
// run as users run it (this Node, no flags, a bare environment) has V8 use every one of them, and
// a copy whose CLI no longer matches its cache ignores that cache and still works.
import { execFile } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI_MAIN } from '../helpers/cli.js';

const bundle = dirname(CLI_MAIN);
const tmp = mkdtempSync(join(tmpdir(), 'gaxx-cli-cache-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs the CLI in `dir` as its entry does; what became of the cache of each file it loaded. */
function probe(dir: string, args: string[]): Promise<{ code: number; status: Record<string, string>; stdout: string }> {
  const files = readdirSync(dir).filter((f) => /^(gaxx-cli|vendor-[\w-]+)\.cjs$/.test(f) && f !== 'vendor-load.cjs');
  const script = `const v = require(${JSON.stringify(join(dir, 'vendor-load.cjs'))});
process.on('exit', () => process.stderr.write('cache=' + JSON.stringify(Object.fromEntries(${JSON.stringify(files)}.map((f) => [f, v.cacheStatus(f)]).filter(([, s]) => s)))));
v.loadVendor('gaxx-cli.cjs');`;
  return new Promise((done) => {
    execFile(process.execPath, ['-e', script, '--', 'gaxx', ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp } }, (e, stdout, stderr) =>
      done({
        code: e ? (typeof e.code === 'number' ? e.code : -1) : 0,
        status: JSON.parse(/cache=(\{.*\})/.exec(stderr)?.[1] ?? '{}') as Record<string, string>,
        stdout,
      }),
    );
  });
}

describe('the CLI code caches', () => {
  it('are used by a command that loads only the CLI (gaxx --version)', async () => {
    const r = await probe(bundle, ['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(r.status).toEqual({ 'gaxx-cli.cjs': 'used' });
  });

  it('are used for every vendor file a command loads (gaxx scheduler --help: BullMQ and ioredis)', async () => {
    const r = await probe(bundle, ['scheduler', '--help']);
    expect(r.code).toBe(0);
    expect(Object.keys(r.status)).toEqual(expect.arrayContaining(['gaxx-cli.cjs', 'vendor-bullmq.cjs', 'vendor-ioredis.cjs']));
    for (const [file, status] of Object.entries(r.status)) expect({ file, status }).toEqual({ file, status: 'used' });
  });

  it('is ignored when the CLI beside it changed, and the CLI still runs', async () => {
    const dir = mkdtempSync(join(tmp, 'changed-'));
    cpSync(bundle, dir, { recursive: true });
    appendFileSync(join(dir, 'gaxx-cli.cjs'), '\n// changed after the build\n');
    const r = await probe(dir, ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('gaxx');
    expect(r.status).toEqual({ 'gaxx-cli.cjs': 'stale' });
  });
});
