#!/usr/bin/env node
// Makes the V8 code caches of the files vendor-load.cjs loads, with its writeCache:
//   node scripts/vendor-cache.mjs <bundle dir>           the CLI's vendor files (vendor-*.cjs):
//     loads each, and uses grpc-js and proto-loader as a command does (package definitions of
//     both services, a client that never connects)
//   node scripts/vendor-cache.mjs <bundle dir> --cli     the CLI (gaxx-cli.cjs): runs
//     `gaxx exec --help` (the command line, the command table, a command and the agent client)
//     and writes what V8 has compiled of it when the CLI exits
//   node scripts/vendor-cache.mjs <bundle dir> --agent   the agent (gaxx-agent.cjs): starts it on
//     loopback with throw-away certificates, asks its Health over mTLS, then writes what V8 has
//     compiled by then; run with the agent's environment and no V8 flags (V8 refuses a cache
//     made under other V8 flags; Node's own, such as --use-openssl-ca, do not matter)
// Run by scripts/bundle.mjs. Each cache records the hash of the file it was made from.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dir = resolve(process.argv[2] ?? '');
const { loadVendor, writeCache } = createRequire(join(dir, 'index.cjs'))('./vendor-load.cjs');
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

/** Runs the CLI's `exec --help` in this process; its cache is written as the CLI exits. */
function cliCache() {
  const cli = join(dir, 'gaxx-cli.cjs');
  process.argv = [process.argv[0], cli, 'exec', '--help'];
  process.on('exit', (code) => {
    if (code !== 0) return;
    try {
      writeCache(cli);
    } catch (e) {
      process.stderr.write(`vendor-cache: ${e?.stack ?? e}\n`);
      process.exitCode = 1;
    }
  });
  loadVendor('gaxx-cli.cjs');
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
    const { ca } = await FleetCa.init(join(tmp, 'ca'));
    const issue = async (sub, opts) => {
      const made = await ca.issue(opts);
      writeCertDir(join(tmp, sub), { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem });
      return join(tmp, sub);
    };
    const agentCerts = await issue('agent', { identity: { role: 'agent', fleet: 'build', host: 'cache' }, hosts: ['127.0.0.1', 'localhost'] });
    const operatorCerts = await issue('operator', { identity: { role: 'operator', name: 'build' } });
    const port = await freePort();
    // The agent reads its flags from argv and env as in production; development lets it start
    // as root (builds often run as root); tasks are never run.
    process.env.GAXX_ENV = 'development';
    process.argv = [process.argv[0], join(dir, 'gaxx-agent.cjs'), '--listen', `127.0.0.1:${port}`, '--metrics-listen', '127.0.0.1:0', '--certs', agentCerts];
    process.argv.push('--data-dir', join(tmp, 'data'), '--audit-log', join(tmp, 'audit', 'audit.log'), '--state-dir', join(tmp, 'state'));
    loadVendor('gaxx-agent.cjs');
    await healthOf(port, operatorCerts);
    writeCache(join(dir, 'gaxx-agent.cjs'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

try {
  if (process.argv.includes('--cli')) {
    // The CLI exits by itself once it printed the help; the exit handler writes the cache.
    cliCache();
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
