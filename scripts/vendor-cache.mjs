#!/usr/bin/env node
// Makes the V8 code caches of the files vendor-load.cjs loads, with its writeCache:
//   node scripts/vendor-cache.mjs <bundle dir>           the CLI's vendor files (vendor-*.cjs):
//     loads each, and uses grpc-js and proto-loader as a command does (package definitions of
//     both services, a client that never connects)
//   node scripts/vendor-cache.mjs <bundle dir> --cli     the CLI (gaxx-cli.cjs): runs
//     `gaxx exec --help` (the command line, the command table, a command and the agent client)
//     and writes what V8 has compiled of it when the CLI exits
//   node scripts/vendor-cache.mjs <bundle dir> --agent   the agent (gaxx-agent.cjs): starts it on
//     loopback with throw-away certificates, asks its Health over mTLS, then has the CLI run
//     `gaxx exec -- true` and `gaxx run -- true` on it, each in a child process (--cli --exec and
//     --cli --run below, which remake the CLI's caches), then writes what V8 has
//     compiled by then; run with the agent's environment and Node flags (AGENT_NODE_FLAGS: V8
//     refuses a cache made under other V8 flags, such as its heap sizes; the CLI's children run
//     with none, as users run the CLI)
//   node scripts/vendor-cache.mjs <bundle dir> --cli --exec ADDRESS   (GAXX_HOME set) the CLI
//     and every vendor file it loads (grpc-js) from a real `gaxx exec --agent
//     ADDRESS -- true`: the connection, the handshake, the call and the output are then in the
//     caches too, not only the command line (as --cli alone makes them). Written only when the
//     exec succeeded.
//   node scripts/vendor-cache.mjs <bundle dir> --cli --run ADDRESS   the same from `gaxx run
//     --agent ADDRESS -- true` (its own embedded redis-server and worker: ioredis and BullMQ too).
//     A cache a file already has is loaded first, so what an earlier command compiled stays in.
//   ... --cli --exec ADDRESS --own (or --run)   the command's own cache of the CLI,
//     gaxx-cli.cjs.<command>.v8cache, which its entry prefers (vendor-load.cjs variants): the
//     CLI compiled without a cache, so that only what this command compiles is in it (V8
//     deserialises all of a cache; in one build the cache of all commands was 554 KB, exec's
//     own 315 KB). The vendor files' caches are left as they are.
// Run by scripts/bundle.mjs. Each cache records the hash of the file it was made from.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dir = resolve(process.argv[2] ?? '');
const { loadVendor, writeCache, cacheStatus } = createRequire(join(dir, 'index.cjs'))('./vendor-load.cjs');
// The descriptors, loader options and CA code of the tsc build (npm run build runs tsc first).
const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const distImport = (p) => import(pathToFileURL(join(dist, p)).href);

/** grpc-js and proto-loader, and the Agent and Health client constructors made from them. */
async function clients() {
  const grpc = loadVendor('vendor-grpc-js.cjs');
  const protoLoader = loadVendor('vendor-proto-loader.cjs');
  const { AGENT_PROTO, HEALTH_PROTO } = await distImport('proto/gen/descriptors.js');
  const { LOADER_OPTIONS } = await distImport('proto/load.js');
  const agent = grpc.loadPackageDefinition(protoLoader.fromJSON(AGENT_PROTO, LOADER_OPTIONS)).gaxx.agent.v1.Agent;
  const health = grpc.loadPackageDefinition(protoLoader.fromJSON(HEALTH_PROTO, LOADER_OPTIONS)).grpc.health.v1.Health;
  return { grpc, agent, health };
}

async function vendorCaches() {
  const files = readdirSync(dir).filter((f) => /^vendor-[\w-]+\.cjs$/.test(f) && f !== 'vendor-load.cjs');
  // Without a tsc build the files are only loaded, not used.
  if (existsSync(join(dist, 'proto', 'load.js'))) await useClients();
  for (const f of files) loadVendor(f);
  for (const f of files) writeCache(join(dir, f));
}

/**
 * Runs the CLI in this process, `exec --help`, or with `agent` a command (`exec` or `run`) of
 * `true` on that agent. As the CLI exits 0 the caches are written: the CLI's, and with `agent`
 * every vendor file's it loaded.
 */
function cliCache(command, agent, own) {
  const cli = join(dir, 'gaxx-cli.cjs');
  const args = agent ? [command, '--agent', agent, '--', 'true'] : ['exec', '--help'];
  process.argv = [process.argv[0], cli, ...args];
  process.on('exit', (code) => {
    if (code !== 0) return;
    try {
      if (own) return writeCache(cli, command);
      const vendors = agent ? readdirSync(dir).filter((f) => /^vendor-[\w-]+\.cjs$/.test(f) && cacheStatus(f) !== undefined) : [];
      for (const f of [cli, ...vendors.map((v) => join(dir, v))]) writeCache(f);
    } catch (e) {
      process.stderr.write(`vendor-cache: ${e?.stack ?? e}\n`);
      process.exitCode = 1;
    }
  });
  loadVendor('gaxx-cli.cjs', own ? { cache: false } : {});
}

/**
 * `gaxx <command> --agent ADDRESS -- true` in a child (this process serves the agent meanwhile)
 * with GAXX_HOME `home`. Resolves with its exit code; its output is dropped, its errors kept.
 */
function trainOn(command, address, home, own = false) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), dir, '--cli', `--${command}`, address, ...(own ? ['--own'] : [])], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GAXX_HOME: home },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  return new Promise((done) => {
    child.on('error', (e) => done({ code: -1, err: e.message }));
    child.on('exit', (code) => done({ code, err }));
  });
}

async function useClients() {
  const { grpc, agent, health } = await clients();
  for (const service of [agent, health]) {
    // Made only to compile grpc-js's client paths for the cache, and closed before it connects.
    new service('127.0.0.1:1', grpc.credentials.createInsecure()).close(); // insecure-ok: build time only, never connects
  }
}

/** A loopback port that was free a moment ago (the agent binds it next). */
function freePort() {
  return new Promise((done, fail) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => done(port));
    });
    s.on('error', fail);
  });
}

/** The agent's Health over mTLS, retried while it starts (bounded: about 60 s). */
async function healthOf(port, certs) {
  const { grpc, health } = await clients();
  const read = (f) => readFileSync(join(certs, f));
  const client = new health(`localhost:${port}`, grpc.credentials.createSsl(read('ca.pem'), read('key.pem'), read('cert.pem')));
  try {
    for (let i = 0; i < 600; i++) {
      const status = await new Promise((done) => client.check({ service: '' }, { deadline: Date.now() + 2000 }, (e, r) => done(e ? undefined : r?.status)));
      if (status === 'SERVING') return;
      await sleep(100);
    }
    throw new Error('the agent did not answer Health');
  } finally {
    client.close();
  }
}

async function agentCache() {
  const tmp = mkdtempSync(join(tmpdir(), 'gaxx-agent-cache-'));
  try {
    const { FleetCa, writeCertDir } = await distImport('certs/index.js');
    // A GAXX_HOME as `gaxx init` makes it (its CA, an operator) for the CLI's commands.
    const home = join(tmp, 'home');
    const { ca } = await FleetCa.init(join(home, 'config', 'ca'));
    const issue = async (certDir, opts) => {
      const made = await ca.issue(opts);
      writeCertDir(certDir, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem });
      return certDir;
    };
    const agentCerts = await issue(join(tmp, 'agent'), { identity: { role: 'agent', fleet: 'build', host: 'cache' }, hosts: ['127.0.0.1', 'localhost'] });
    const operatorCerts = await issue(join(home, 'config', 'operator'), { identity: { role: 'operator', name: 'build' } });
    const port = await freePort();
    // The agent reads its flags from argv and env as in production; development lets it start
    // as root (builds often run as root). Its tasks are `true`, unsandboxed: a build machine
    // may have no bubblewrap, and the exec path is the same up to the launch.
    process.env.GAXX_ENV = 'development';
    process.argv = [process.argv[0], join(dir, 'gaxx-agent.cjs'), '--listen', `127.0.0.1:${port}`, '--metrics-listen', '127.0.0.1:0', '--certs', agentCerts];
    process.argv.push('--data-dir', join(tmp, 'data'), '--audit-log', join(tmp, 'audit', 'audit.log'), '--state-dir', join(tmp, 'state'));
    process.argv.push('--unsafe-no-isolation');
    loadVendor('gaxx-agent.cjs');
    await healthOf(port, operatorCerts);
    // The CLI's caches from real commands, one after the other (each keeps what the one before
    // compiled); a command that fails leaves the caches as they were, and the build goes on.
    // `run` needs redis-server (its embedded one): without it, `exec` alone.
    const commands = spawnSync('redis-server', ['--version']).status === 0 ? ['exec', 'run'] : ['exec'];
    for (const command of commands) {
      const trained = await trainOn(command, `127.0.0.1:${port}`, home);
      if (trained.code !== 0)
        process.stderr.write(`vendor-cache: the CLI's caches stay without \`gaxx ${command}\`: it exited ${trained.code}\n${trained.err}`);
    }
    // Then each command's own cache of the CLI (see --own above).
    for (const command of commands) {
      const trained = await trainOn(command, `127.0.0.1:${port}`, home, true);
      if (trained.code !== 0)
        process.stderr.write(`vendor-cache: \`gaxx ${command}\` starts from the cache of all commands: it exited ${trained.code}\n${trained.err}`);
    }
    writeCache(join(dir, 'gaxx-agent.cjs'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

try {
  if (process.argv.includes('--cli')) {
    // The CLI exits by itself once it is done; the exit handler writes the caches.
    const command = ['exec', 'run'].find((c) => process.argv.includes(`--${c}`));
    cliCache(command, command ? process.argv[process.argv.indexOf(`--${command}`) + 1] : undefined, command !== undefined && process.argv.includes('--own'));
    await new Promise(() => undefined);
  }
  if (process.argv.includes('--agent')) await agentCache();
  else await vendorCaches();
  // The agent would run on; the cache is written.
  process.exit(0);
} catch (e) {
  process.stderr.write(`vendor-cache: ${e?.stack ?? e}\n`);
  process.exit(1);
}
