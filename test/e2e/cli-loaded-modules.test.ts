// What `gaxx --version`, `gaxx --help` and `gaxx exec --help` load: no queue code (BullMQ,
// ioredis), no grpc-js, in the bundle (the package's bin) and in the tsc build; `gaxx exec` to a
// real agent loads grpc-js but no queue code, no node-forge (reading certificates needs no CA
// code) and no proto-loader or protobufjs (Exec's messages are plain code), and sets up
// node:fs/promises only to read --stdin FILE (and, in the bundle, never node:zlib or node:dns),
// nor a stream for a stdin that is /dev/null;
// neither does `gaxx run` without a daemon load proto-loader. A preload records every module file
// the process loads (ES modules through a loader hook, CommonJS through Module._load); a file
// counts as queue code when it is a package's own file or a bundle file that carries it (the
// bundle has each large package in a vendor file of its own, and esbuild marks each bundled file
// with a `// node_modules/<pkg>/...` comment). `gaxx --version` and `gaxx --help` with their
// output in a file also set up none of Node's crypto, net or tty modules (each costs a start
// milliseconds).
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa, writeCertDir } from '../../certs/index.js';
import { repoRoot, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { CLI_MAIN, runGaxx, spawnGaxx } from '../helpers/cli.js';

let dir: string;
let preload: string;
let agent: AgentProcess;

const HOOKS = `
import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  if (url.startsWith('file:')) appendFileSync(process.env.GAXX_TEST_LOAD_LOG, url + '\\n');
  return next(url, context);
}`;

const PRELOAD = `
import Module, { register } from 'node:module';
import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}));
// A CommonJS require of child_process (the bundle's) gets a spawn that, when it starts
// redis-server, first records the files in require.cache ("atspawn:" lines): the packages and
// the bundle's vendor files loaded by then. (Not imported here: it would set up node:net.)
const atSpawn = (cp) => {
  if (cp.spawn.recording) return;
  const spawn = cp.spawn;
  cp.spawn = function (file, ...rest) {
    if (String(file).endsWith('redis-server')) {
      for (const f of Object.keys(Module._cache)) appendFileSync(process.env.GAXX_TEST_LOAD_LOG, 'atspawn:' + pathToFileURL(f).href + '\\n');
      appendFileSync(process.env.GAXX_TEST_LOAD_LOG, 'spawned:redis-server\\n');
    }
    return spawn.call(this, file, ...rest);
  };
  cp.spawn.recording = true;
};
const load = Module._load;
Module._load = function (request, parent, isMain) {
  try {
    appendFileSync(process.env.GAXX_TEST_LOAD_LOG, pathToFileURL(Module._resolveFilename(request, parent, isMain)).href + '\\n');
  } catch {}
  const loaded = load.apply(this, arguments);
  if (request === 'node:child_process' || request === 'child_process') atSpawn(loaded);
  return loaded;
};
// Whether the command made process.stdin (a stream for whatever fd 0 is): "stdin:made".
const stdinGetter = Object.getOwnPropertyDescriptor(process, 'stdin').get;
Object.defineProperty(process, 'stdin', {
  configurable: true,
  enumerable: true,
  get() {
    appendFileSync(process.env.GAXX_TEST_LOAD_LOG, 'stdin:made\\n');
    return stdinGetter.call(process);
  },
});
// Modules compiled outside Module._load (the bundle's vendor files, loaded with their code
// cache) are in require.cache all the same.
process.on('exit', () => {
  for (const f of Object.keys(Module._cache)) appendFileSync(process.env.GAXX_TEST_LOAD_LOG, pathToFileURL(f).href + '\\n');
  // Node's own modules set up in this process (Node lists them as "NativeModule <id>").
  for (const m of process.moduleLoadList) if (m.startsWith('NativeModule ')) appendFileSync(process.env.GAXX_TEST_LOAD_LOG, 'node:' + m.slice(13) + '\\n');
});`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-loaded-'));
  preload = join(dir, 'record.mjs');
  writeFileSync(preload, PRELOAD);
  // An operator (GAXX_HOME = dir) and an agent of the same CA, for `gaxx exec`.
  const { ca } = await FleetCa.init(join(dir, 'config', 'ca'));
  const op = await ca.issue({ identity: { role: 'operator', name: 'alice' } });
  writeCertDir(join(dir, 'config', 'operator'), { certPem: op.certPem, keyPem: op.keyPem, caPem: ca.certPem });
  const made = await ca.issue({ identity: { role: 'agent', fleet: 'adhoc', host: 'h1' }, hosts: ['127.0.0.1'] });
  const certs = join(dir, 'agent-certs');
  mkdirSync(certs, { mode: 0o700 });
  writeCertDir(certs, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem });
  agent = await startAgent({ certsDir: certs });
});
afterAll(async () => {
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs the CLI with the recording preload; the module files it loaded, Node's own modules it set
 * up, and when it started redis-server, the CommonJS files loaded by then.
 */
function loadedFiles(
  main: string,
  args: string[],
  env: Record<string, string> = {},
  o: { nullStdin?: boolean } = {},
): Promise<{ code: number; stdout: string; files: string[]; builtins: string[]; stdinMade: boolean; atRedisSpawn: string[] | undefined }> {
  const log = join(dir, `log-${Math.random().toString(36).slice(2)}`);
  writeFileSync(log, '');
  const run = { main, nodeArgs: ['--import', preload], home: dir, env: { ...env, GAXX_TEST_LOAD_LOG: log } };
  // With nullStdin, spawnGaxx's stdin (/dev/null) instead of runGaxx's pipe, closed at once.
  const ran = o.nullStdin ? spawnGaxx(args, run).done.then(({ code, stdout }) => ({ code: code ?? -1, stdout })) : runGaxx(args, run);
  return ran.then(({ code, stdout }) => {
    const lines = readFileSync(log, 'utf8').split('\n');
    const files = [...new Set(lines.filter((l) => l.startsWith('file:')).map((u) => fileURLToPath(u)))];
    const spawned = lines.includes('spawned:redis-server');
    const atRedisSpawn = lines.filter((l) => l.startsWith('atspawn:')).map((l) => fileURLToPath(l.slice('atspawn:'.length)));
    const builtins = lines.filter((l) => l.startsWith('node:')).map((l) => l.slice('node:'.length));
    return { code, stdout, files, builtins, stdinMade: lines.includes('stdin:made'), atRedisSpawn: spawned ? atRedisSpawn : undefined };
  });
}

/** The loaded files that are, or carry, package `pkg`'s code. */
function carrying(files: string[], pkg: string): string[] {
  return files.filter(
    (f) => f.includes(`/node_modules/${pkg}/`) || (f.includes('/dist/bundle/') && readFileSync(f, 'utf8').includes(`// node_modules/${pkg}/`)),
  );
}

const QUEUE = ['bullmq', 'ioredis'];
const builds = [
  ['the bundle', CLI_MAIN],
  ['the tsc build', join(repoRoot(), 'dist', 'cli', 'main.js')],
] as const;

describe.each(builds)('modules loaded by %s', (_name, main) => {
  it.each([['--version'], ['--help']])('gaxx %s loads no queue code and no grpc-js', async (flag) => {
    const r = await loadedFiles(main, [flag]);
    expect(r.code).toBe(0);
    expect(r.files.length).toBeGreaterThan(0);
    for (const pkg of [...QUEUE, '@grpc/grpc-js']) expect(carrying(r.files, pkg)).toEqual([]);
  });

  it.each([['--version'], ['--help']])('gaxx %s, its output in files, sets up neither node:crypto nor node:net nor node:tty', async (flag) => {
    // runGaxx gives the CLI pipes: here its output goes to a file, as a script's redirection does.
    const log = join(dir, `log-${Math.random().toString(36).slice(2)}`);
    writeFileSync(log, '');
    const out = openSync(join(dir, 'out'), 'w');
    const child = spawn(process.execPath, ['--import', preload, main, flag], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GAXX_HOME: dir, GAXX_TEST_LOAD_LOG: log },
      stdio: ['ignore', out, out],
    });
    const code = await new Promise<number | null>((done) => child.on('exit', done));
    closeSync(out);
    expect(code).toBe(0);
    expect(readFileSync(join(dir, 'out'), 'utf8')).toMatch(/gaxx|\d+\.\d+\.\d+/);
    const builtins = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('node:'))
      .map((l) => l.slice(5));
    // The recording sees Node's modules (path and fs are set up by every process).
    expect(builtins).toEqual(expect.arrayContaining(['path', 'fs']));
    for (const m of ['crypto', 'net', 'tty']) expect(builtins).not.toContain(m);
  });

  it('gaxx exec --help loads the exec command and the agent client, but no queue code and no grpc-js', async () => {
    const r = await loadedFiles(main, ['exec', '--help']);
    expect(r.code).toBe(0);
    // The command's own module was loaded: exec.js in the tsc build; the bundle has all of gaxx's
    // own code in gaxx-cli.cjs (a command's modules initialised only when it runs).
    const own = main === CLI_MAIN ? /^gaxx-cli\.cjs$/ : /^exec\.js$/;
    expect(r.files.some((f) => own.test(basename(f)))).toBe(true);
    // The client loads grpc-js on its first use, not when its module is imported.
    for (const pkg of [...QUEUE, 'prom-client', '@grpc/grpc-js']) expect(carrying(r.files, pkg)).toEqual([]);
  });

  it('gaxx exec to an agent loads grpc-js, but no queue code, no node-forge, no proto-loader, no zod, and node:fs/promises only for --stdin FILE', async () => {
    const r = await loadedFiles(main, ['exec', '--agent', agent.address, '--no-stdin', '--', 'true']);
    expect(r.code).toBe(0);
    expect(carrying(r.files, '@grpc/grpc-js').length).toBeGreaterThan(0);
    // Exec's messages are plain code (proto/exec-codec.ts): neither proto-loader nor protobufjs.
    // With no config file and no setting in the environment or flags, nothing is validated with
    // zod (cli/zod.cjs), and the revocation lists are checked without it.
    for (const pkg of [...QUEUE, 'node-forge', '@grpc/proto-loader', 'protobufjs', 'zod']) expect(carrying(r.files, pkg)).toEqual([]);
    // A setting in the environment is validated, with zod, and the command still runs.
    const set = await loadedFiles(main, ['exec', '--agent', agent.address, '--no-stdin', '--', 'true'], { GAXX_LOG_LEVEL: 'warn' });
    expect(set.code).toBe(0);
    expect(carrying(set.files, 'zod').length).toBeGreaterThan(0);
    // node:fs/promises is set up only for --stdin FILE.
    expect(r.builtins).toEqual(expect.arrayContaining(['http2', 'tls']));
    expect(r.builtins).not.toContain('fs/promises');
    // Nor node:zlib or node:dns in the bundle: its grpc-js loads them on first use
    // (scripts/grpc-lazy-builtins.mjs; agents are dialled by address), and vendor-load.cjs takes
    // the files the build left as they were without a digest.
    if (main === CLI_MAIN) for (const m of ['zlib', 'dns']) expect(r.builtins).not.toContain(m);
    // Standard input that is the null device is not read: no stream is made for it, as with
    // --no-stdin; a pipe (closed at once here) is made and read to its end as ever.
    const devNull = await loadedFiles(main, ['exec', '--agent', agent.address, '--', 'cat'], {}, { nullStdin: true });
    expect(devNull.code).toBe(0);
    expect(devNull.stdout).toBe('');
    expect(devNull.stdinMade).toBe(false);
    expect(r.stdinMade).toBe(false);
    const piped = await loadedFiles(main, ['exec', '--agent', agent.address, '--', 'cat']);
    expect(piped.code).toBe(0);
    expect(piped.stdinMade).toBe(true);
    const input = join(dir, 'stdin.txt');
    writeFileSync(input, 'x');
    const withFile = await loadedFiles(main, ['exec', '--agent', agent.address, '--stdin', input, '--', 'cat']);
    expect(withFile.code).toBe(0);
    expect(withFile.builtins).toContain('fs/promises');
  });

  it('gaxx run loads the queue code but not prom-client (only a daemon serves metrics), nor proto-loader (its worker only calls Exec)', async () => {
    const r = await loadedFiles(main, ['run', '--agent', agent.address, '--', 'true']);
    expect(r.code).toBe(0);
    for (const pkg of QUEUE) expect(carrying(r.files, pkg).length).toBeGreaterThan(0);
    for (const pkg of ['prom-client', '@grpc/proto-loader', 'protobufjs']) expect(carrying(r.files, pkg)).toEqual([]);
  });

  it('the recording sees queue code where a command loads it (gaxx scheduler --help), and the scheduler sets up HTTP only to serve', async () => {
    const r = await loadedFiles(main, ['scheduler', '--help']);
    expect(r.code).toBe(0);
    for (const pkg of QUEUE) expect(carrying(r.files, pkg).length).toBeGreaterThan(0);
    // All of the scheduler's modules are initialised here (its daemon's and dashboard's too), as
    // for a `gaxx run` that a daemon dispatches (which loads no grpc-js, whose proxy support sets
    // node:http up): none sets up node:http or node:https before it serves or collects.
    expect(r.builtins).toEqual(expect.arrayContaining(['crypto']));
    for (const m of ['http', 'https']) expect(r.builtins).not.toContain(m);
  });
});

// The bundle (what users run) requires child_process, so the recording sees the spawn itself.
it('the bundle: gaxx run starts its embedded redis-server before it loads the queue code, which then loads while the server boots', async () => {
  const r = await loadedFiles(CLI_MAIN, ['run', '--agent', agent.address, '--', 'true']);
  expect(r.code).toBe(0);
  // The recording saw the spawn, and the files of that moment (the CLI's own) ...
  expect(r.atRedisSpawn?.map((f) => basename(f))).toContain('gaxx-cli.cjs');
  // ... with no queue code among them: the run loads it after.
  for (const pkg of QUEUE) expect({ pkg, loaded: carrying(r.atRedisSpawn ?? [], pkg) }).toEqual({ pkg, loaded: [] });
  for (const pkg of QUEUE) expect(carrying(r.files, pkg).length).toBeGreaterThan(0);
});
