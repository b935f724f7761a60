// The bundled CLI starts from the V8 code caches the build made: gaxx-cli.cjs.v8cache beside the
// CLI, and one beside each vendor file a command loads (BullMQ, ioredis, grpc-js, ...). A command
// run as users run it (this Node, no flags, a bare environment) has V8 use every one of them, and
// a copy whose CLI no longer matches its cache ignores that cache and still works. The caches of
// the CLI, grpc-js and proto-loader are made by a real `gaxx exec` at build time (the build's
// agent serves it; scripts/vendor-cache.mjs --cli --exec), and only from an exec that succeeded.
import { execFile } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { CLI_MAIN } from '../helpers/cli.js';
import { homeAgentCerts, initHome } from '../helpers/cli-world.js';

const bundle = dirname(CLI_MAIN);
const tmp = mkdtempSync(join(tmpdir(), 'gaxx-cli-cache-'));
let home: string;
let agent: AgentProcess;
beforeAll(async () => {
  home = await initHome('gxcc-');
  agent = await startAgent({ certsDir: await homeAgentCerts(home) });
});
afterAll(async () => {
  await stopAllAgents();
  rmSync(tmp, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

/** The files whose caches each command makes at build time. */
const CACHED_BY = {
  exec: ['gaxx-cli.cjs', 'vendor-grpc-js.cjs', 'vendor-proto-loader.cjs'],
  run: ['gaxx-cli.cjs', 'vendor-grpc-js.cjs', 'vendor-proto-loader.cjs', 'vendor-ioredis.cjs', 'vendor-bullmq.cjs'],
};
const EXEC_CACHED = CACHED_BY.exec;

/** `scripts/vendor-cache.mjs <dir> --cli --<command> <address>` as the build runs it, with `home` (its operator, CA and embedded redis). */
function train(dir: string, command: 'exec' | 'run', address: string): Promise<{ code: number; stderr: string }> {
  const script = join(repoRoot(), 'scripts', 'vendor-cache.mjs');
  return new Promise((done) => {
    const child = execFile(
      process.execPath,
      [script, dir, '--cli', `--${command}`, address],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GAXX_HOME: home } },
      (e, _out, stderr) => done({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stderr }),
    );
    child.stdin?.end();
  });
}

/** A copy of the bundle (under `tmp`) without the caches of `files`. */
function copyWithout(prefix: string, files: readonly string[]): string {
  const dir = mkdtempSync(join(tmp, prefix));
  cpSync(bundle, dir, { recursive: true });
  for (const f of files) rmSync(join(dir, `${f}.v8cache`));
  return dir;
}

/** The command exited 0 and V8 used the cache of every one of `files`. */
function expectUsed(r: { code: number; status: Record<string, string> }, files: readonly string[]): void {
  expect(r.code).toBe(0);
  for (const file of files) expect({ file, status: r.status[file] }).toEqual({ file, status: 'used' });
}

/** Runs the CLI in `dir` as its entry does; what became of the cache of each file it loaded. */
function probe(dir: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; status: Record<string, string>; stdout: string }> {
  const files = readdirSync(dir).filter((f) => /^(gaxx-cli|vendor-[\w-]+)\.cjs$/.test(f) && f !== 'vendor-load.cjs');
  const script = `const v = require(${JSON.stringify(join(dir, 'vendor-load.cjs'))});
process.on('exit', () => process.stderr.write('cache=' + JSON.stringify(Object.fromEntries(${JSON.stringify(files)}.map((f) => [f, v.cacheStatus(f)]).filter(([, s]) => s)))));
v.loadVendor('gaxx-cli.cjs');`;
  return new Promise((done) => {
    // stdin ends at once: gaxx exec passes what it reads to the task.
    const child = execFile(
      process.execPath,
      ['-e', script, '--', 'gaxx', ...args],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, ...env } },
      (e, stdout, stderr) =>
        done({
          code: e ? (typeof e.code === 'number' ? e.code : -1) : 0,
          status: JSON.parse(/cache=(\{.*\})/.exec(stderr)?.[1] ?? '{}') as Record<string, string>,
          stdout,
        }),
    );
    child.stdin?.end();
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

  it('are used by gaxx exec to an agent: the CLI, grpc-js and proto-loader', async () => {
    expectUsed(await probe(bundle, ['exec', '--agent', agent.address, '--', 'true'], { GAXX_HOME: home }), EXEC_CACHED);
  });

  it('are made from a real exec, which the next exec uses; an exec that fails writes none', async () => {
    const dir = copyWithout('trained-', EXEC_CACHED);
    const failed = await train(dir, 'exec', '127.0.0.1:1');
    expect(failed.code).not.toBe(0);
    for (const f of EXEC_CACHED) expect({ f, cached: existsSync(join(dir, `${f}.v8cache`)) }).toEqual({ f, cached: false });
    const trained = await train(dir, 'exec', agent.address);
    expect(trained).toEqual({ code: 0, stderr: '' });
    expectUsed(await probe(dir, ['exec', '--agent', agent.address, '--', 'true'], { GAXX_HOME: home }), EXEC_CACHED);
  });

  it('are made from a real gaxx run (its embedded redis, ioredis and BullMQ), which the next run uses', async () => {
    const dir = copyWithout('trained-run-', CACHED_BY.run);
    const trained = await train(dir, 'run', agent.address);
    expect(trained.code, trained.stderr).toBe(0);
    expectUsed(await probe(dir, ['run', '--agent', agent.address, '--', 'true'], { GAXX_HOME: home }), CACHED_BY.run);
  });
});
