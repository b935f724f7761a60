// The bundled CLI starts from the V8 code caches the build made: gaxx-cli.cjs.v8cache beside the
// CLI, and one beside each vendor file a command loads (BullMQ, ioredis, grpc-js, ...). A command
// run as users run it (this Node, no flags, a bare environment) has V8 use every one of them, and
// a copy whose CLI no longer matches its cache ignores that cache and still works. The caches of
// the CLI and grpc-js are made by a real `gaxx exec` at build time (the build's agent serves it;
// scripts/vendor-cache.mjs --cli --exec), and only from an exec that succeeded (exec loads no
// proto-loader: its messages are plain code, proto/exec-codec.ts).
import { execFile } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
  exec: ['gaxx-cli.cjs', 'vendor-grpc-js.cjs'],
  run: ['gaxx-cli.cjs', 'vendor-grpc-js.cjs', 'vendor-ioredis.cjs', 'vendor-bullmq.cjs'],
};
const EXEC_CACHED = CACHED_BY.exec;

/** `scripts/vendor-cache.mjs <dir> --cli --<command> <address>` as the build runs it, with `home` (its operator, CA and embedded redis). */
function train(dir: string, command: 'exec' | 'run', address: string, own = false): Promise<{ code: number; stderr: string }> {
  const script = join(repoRoot(), 'scripts', 'vendor-cache.mjs');
  return new Promise((done) => {
    const child = execFile(
      process.execPath,
      [script, dir, '--cli', `--${command}`, address, ...(own ? ['--own'] : [])],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GAXX_HOME: home } },
      (e, _out, stderr) => done({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stderr }),
    );
    child.stdin?.end();
  });
}

/** A copy of the bundle (under `tmp`) without the caches of `files`, the commands' own (<file>.<command>.v8cache) included. */
function copyWithout(prefix: string, files: readonly string[]): string {
  const dir = mkdtempSync(join(tmp, prefix));
  cpSync(bundle, dir, { recursive: true });
  for (const c of readdirSync(dir)) if (files.some((f) => c.startsWith(`${f}.`) && c.endsWith('.v8cache'))) rmSync(join(dir, c));
  return dir;
}

/** The command exited 0 and V8 used the cache of every one of `files`. */
function expectUsed(r: { code: number; status: Record<string, string> }, files: readonly string[]): void {
  expect(r.code).toBe(0);
  for (const file of files) expect({ file, status: r.status[file] }).toEqual({ file, status: 'used' });
}

interface Probe {
  code: number;
  status: Record<string, string>;
  /** The cache file the CLI was compiled with (its own or a command's). */
  cliCache: string | undefined;
  stdout: string;
}

/**
 * Runs the CLI in `dir`, by its entry (gaxx.cjs: the front, then the CLI with the cache its
 * command picks) or with `direct` by loading gaxx-cli.cjs itself; what became of the cache of
 * each file it loaded.
 */
function probe(dir: string, args: string[], env: Record<string, string> = {}, direct = false): Promise<Probe> {
  const files = readdirSync(dir).filter((f) => /^(gaxx-cli|vendor-[\w-]+)\.cjs$/.test(f) && f !== 'vendor-load.cjs');
  const report = `const v = require(${JSON.stringify(join(dir, 'vendor-load.cjs'))});
process.on('exit', () => process.stderr.write('cache=' + JSON.stringify({ cli: v.cacheFile('gaxx-cli.cjs') ?? null, status: Object.fromEntries(${JSON.stringify(files)}.map((f) => [f, v.cacheStatus(f)]).filter(([, s]) => s)) })));`;
  const preload = join(mkdtempSync(join(tmp, 'probe-')), 'report.cjs');
  writeFileSync(preload, report);
  const argv = direct
    ? ['-r', preload, '-e', `require(${JSON.stringify(join(dir, 'vendor-load.cjs'))}).loadVendor('gaxx-cli.cjs')`, '--', 'gaxx']
    : ['-r', preload, join(dir, 'gaxx.cjs')];
  return new Promise((done) => {
    // stdin ends at once: gaxx exec passes what it reads to the task.
    const child = execFile(
      process.execPath,
      [...argv, ...args],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, ...env } },
      (e, stdout, stderr) => {
        const seen = JSON.parse(/cache=(\{.*\})/.exec(stderr)?.[1] ?? '{}') as { cli?: string | null; status?: Record<string, string> };
        done({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, status: seen.status ?? {}, cliCache: seen.cli ?? undefined, stdout });
      },
    );
    child.stdin?.end();
  });
}

describe('the CLI code caches', () => {
  it('are used by a command that loads only the CLI (gaxx --version)', async () => {
    const r = await probe(bundle, ['--version'], {}, true);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(r.status).toEqual({ 'gaxx-cli.cjs': 'used' });
  });

  it('are used for every vendor file a command loads (gaxx scheduler --help: BullMQ and ioredis)', async () => {
    const r = await probe(bundle, ['scheduler', '--help']);
    expect(r.code).toBe(0);
    // A command with no cache of its own starts from the cache of all commands.
    expect(r.cliCache).toBe('gaxx-cli.cjs.v8cache');
    expect(Object.keys(r.status)).toEqual(expect.arrayContaining(['gaxx-cli.cjs', 'vendor-bullmq.cjs', 'vendor-ioredis.cjs']));
    for (const [file, status] of Object.entries(r.status)) expect({ file, status }).toEqual({ file, status: 'used' });
  });

  it('is ignored when the CLI beside it changed, and the CLI still runs', async () => {
    const dir = mkdtempSync(join(tmp, 'changed-'));
    cpSync(bundle, dir, { recursive: true });
    appendFileSync(join(dir, 'gaxx-cli.cjs'), '\n// changed after the build\n');
    const r = await probe(dir, ['--help'], {}, true);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('gaxx');
    expect(r.status).toEqual({ 'gaxx-cli.cjs': 'stale' });
    // The same for a command's own cache (exec's), by the entry: not passed over for another.
    const own = await probe(dir, ['exec', '--help']);
    expect(own.code).toBe(0);
    expect(own.stdout).toContain('gaxx exec');
    expect(own).toMatchObject({ cliCache: 'gaxx-cli.cjs.exec.v8cache', status: { 'gaxx-cli.cjs': 'stale' } });
  });

  it("are used by gaxx exec to an agent: the CLI (from exec's own cache) and grpc-js", async () => {
    const r = await probe(bundle, ['exec', '--agent', agent.address, '--', 'true'], { GAXX_HOME: home });
    expectUsed(r, EXEC_CACHED);
    expect(r.cliCache).toBe('gaxx-cli.cjs.exec.v8cache');
  });

  it("a command's own cache holds only what that command compiled; made by the build, used by its entry", async () => {
    const sizes = Object.fromEntries(['', '.exec', '.run'].map((v) => [v, statSync(join(bundle, `gaxx-cli.cjs${v}.v8cache`)).size]));
    // exec loads no queue, no redis client and no worker: a good part of the cache of all commands.
    expect(sizes['.exec']).toBeLessThan(0.8 * (sizes[''] as number));
    expect(sizes['.run']).toBeLessThan(sizes[''] as number);
    const dir = copyWithout('own-', ['gaxx-cli.cjs']);
    const others = readdirSync(dir).filter((f) => f.endsWith('.v8cache'));
    const before = Object.fromEntries(others.map((f) => [f, readFileSync(join(dir, f))]));
    const trained = await train(dir, 'exec', agent.address, true);
    expect(trained).toEqual({ code: 0, stderr: '' });
    // Only exec's own cache of the CLI is written: the CLI's cache of all commands stays absent,
    // and the vendor files' caches are as they were.
    expect(readdirSync(dir).filter((f) => f.endsWith('.v8cache') && !others.includes(f))).toEqual(['gaxx-cli.cjs.exec.v8cache']);
    for (const f of others) expect({ f, same: readFileSync(join(dir, f)).equals(before[f] as Buffer) }).toEqual({ f, same: true });
    const r = await probe(dir, ['exec', '--agent', agent.address, '--', 'true'], { GAXX_HOME: home });
    expectUsed(r, EXEC_CACHED);
    expect(r.cliCache).toBe('gaxx-cli.cjs.exec.v8cache');
    // Another command finds no cache of the CLI there, and runs.
    const other = await probe(dir, ['scheduler', '--help']);
    expect(other).toMatchObject({ code: 0, cliCache: 'gaxx-cli.cjs.v8cache', status: { 'gaxx-cli.cjs': 'missing' } });
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
