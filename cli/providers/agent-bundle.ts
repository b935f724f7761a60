/**
 * The bundled agent (dist/bundle/gaxx-agent.mjs and the files beside it that it loads) and its installation into a
 * directory the agent user can read. A checkout or a GAXX_HOME under a private directory
 * (root's home is 0700) cannot be read by `nobody`, so local agents never run from there: they
 * run from a copy, as bootstrap runs them from an uploaded copy on a VM.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, readdirSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../../certs/index.js';
import { GaxxError, makeDirs, packageVersion } from '../../proto/index.js';
import { checkOwnDir } from '../local-dirs.js';

/** File name of the agent bundle, in dist/bundle and in an installation. */
export const AGENT_BUNDLE_FILE = 'gaxx-agent.mjs';
/** The agent's task launcher, beside the agent bundle (the agent spawns tasks from it). */
export const LAUNCHER_BUNDLE_FILE = 'gaxx-launcher.mjs';
/**
 * The launcher's native spawn, vfork and exec (agent/exec/native/gaxx-spawn.c), when the build had a C compiler.
 * Built for the controller's platform: on a host where it does not load, the launcher forks.
 */
export const SPAWN_MODULE_FILE = 'gaxx-spawn.node';
/** The OpenSSL configuration the agent's Node reads (agentNodeFlags), beside its entry: written by the build. */
export const OPENSSL_CONFIG_FILE = 'gaxx-openssl.cnf';
/**
 * What goes with the agent's entry, from beside it: the task launcher, the agent itself
 * (gaxx-agent.cjs, which the entry loads through vendor-load.cjs) and its V8 code cache, made
 * by the build and used only when it fits the Node that runs it, the launcher's spawn module, and
 * the OpenSSL configuration its Node is started with.
 */
export const AGENT_COMPANION_FILES: readonly string[] = [
  LAUNCHER_BUNDLE_FILE,
  'gaxx-agent.cjs',
  'gaxx-agent.cjs.v8cache',
  'vendor-load.cjs',
  SPAWN_MODULE_FILE,
  OPENSSL_CONFIG_FILE,
];

/**
 * The agent's OpenSSL configuration, in the section Node reads (`nodejs_conf`): OpenSSL's
 * defaults for every TLS context of the process (`system_default`), but no TLS 1.3 session
 * tickets (NumTickets = 0). OpenSSL sends two after every full handshake, each made from a copy
 * of the session that decodes the client's certificate again; no gaxx client resumes a session
 * (grpc-js never offers one), so they were 29% of an agent's handshake (perf samples) for nothing.
 * Without tickets a session cannot be resumed either: every connection presents and verifies a
 * certificate. Node ignores a configuration file that is missing (an agent installed before it
 * shipped sends tickets as before) and refuses to start on one it cannot parse.
 */
export const AGENT_OPENSSL_CONFIG = `# gaxx-agent: OpenSSL settings for the agent's Node (node --openssl-config)
nodejs_conf = gaxx_agent
[gaxx_agent]
ssl_conf = gaxx_agent_ssl
[gaxx_agent_ssl]
system_default = gaxx_agent_tls
[gaxx_agent_tls]
NumTickets = 0
`;

/**
 * Node flags every agent is started with (bootstrap's unit and supervisor, the local provider,
 * the test helper). --use-openssl-ca: an agent trusts its fleet CA only, which every TLS context
 * it makes names, so the public roots bundled with Node are never consulted; yet Node 20 parses
 * all of them (~25 ms of CPU, a good part of the agent's start) when the first context is given
 * a CA. With OpenSSL's default store in their place that step costs what opening that store
 * costs (~2 ms with Node's own builds). The trust of every agent endpoint is unchanged: a peer
 * must chain to the fleet CA.
 * --max-semi-space-size=2 (MiB): V8's young generation grows to two 16 MiB semi-spaces under a
 * burst of tasks and keeps them committed once the burst is over; a full collection does not
 * give them back. Capped at 2 MiB, an agent's resident memory after 10,000 finished tasks (once
 * their entries expired) comes back near its idle figure (bench:footprint). Young collections
 * are then more frequent but no dearer: what survives them (an agent's live young data) is small.
 * V8 refuses a code cache made under other heap flags: the build makes the agent's with these.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--use-openssl-ca', '--max-semi-space-size=2'];

/**
 * The Node flags of an agent whose entry is `entry`: AGENT_NODE_FLAGS and the agent's OpenSSL
 * configuration beside the entry (AGENT_OPENSSL_CONFIG), as every starter starts it.
 */
export function agentNodeFlags(entry: string): string[] {
  return [...AGENT_NODE_FLAGS, `--openssl-config=${join(dirname(entry), OPENSSL_CONFIG_FILE)}`];
}

/**
 * The agent's `--fleet-since` for a fleet created at `fleetSince` (Unix ms), as every starter
 * passes it: the agent then refuses work signed before it, an earlier fleet's of the same name.
 * None without a time (an agent of no fleet, a unit installed by hand).
 */
export function fleetSinceArgs(fleetSince: number | undefined): string[] {
  return fleetSince === undefined ? [] : ['--fleet-since', String(fleetSince)];
}

/**
 * Environment every agent is started with, beside what each starter sets (PATH, GAXX_ENV).
 * MALLOC_ARENA_MAX=2: glibc gives each thread that allocates (libuv's pool, V8's helpers) an
 * arena of its own, up to 8 per core, and keeps what is freed in them, so after thousands of
 * tasks an agent stays well above its idle RSS. Two arenas cut that excess by about a third to a
 * half (npm run bench:footprint, with and without --no-agent-env).
 * MALLOC_TRIM_THRESHOLD_=131072: glibc returns the free top of a heap above 128 KiB, as its
 * default says, but raises that threshold (to as much as 64 MiB) each time a large block is
 * freed, so a burst of tasks left several MiB behind for good. A fixed threshold stops the
 * raising (and keeps blocks of 128 KiB and more in mappings of their own, unmapped when freed):
 * after 10,000 tasks' entries expired, 68-70 MiB instead of 76 (idle: 66).
 * This is the agent's own allocator only: tasks get a clean environment, in which the agent
 * refuses MALLOC_* and GLIBC_TUNABLES.
 */
export const AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '131072' };

/**
 * The agent bundle that belongs to this code: beside the CLI bundle (gaxx-cli.cjs), in dist/bundle
 * of a tsc build, or in dist/bundle of the checkout when run from source. NOT_FOUND names the
 * build command when there is none.
 */
export function agentBundlePath(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  for (let i = 0; i < 5; i++) {
    for (const p of [join(dir, AGENT_BUNDLE_FILE), join(dir, 'bundle', AGENT_BUNDLE_FILE), join(dir, 'dist', 'bundle', AGENT_BUNDLE_FILE)]) {
      if (existsSync(p)) return p;
    }
    dir = dirname(dir);
  }
  throw new GaxxError('NOT_FOUND', `no ${AGENT_BUNDLE_FILE} found near ${from}: run 'npm run build' in the gaxx checkout`);
}

/** Where and what to install. */
export interface InstallAgentOptions {
  /** The bundle to copy (default: agentBundlePath()). */
  source?: string;
  /**
   * Directory to install into (default: `<tmpdir>/gaxx-agent-<hash of the bundle>`, shared by
   * every caller of the same build; see STALE_INSTALL_MS for the other builds' ones there).
   * Created 0755 and owned by us; an existing one must be a directory owned by us that no one
   * else can write to.
   */
  dir?: string;
  /** Package version, written beside the bundle as package.json (the agent reports it). */
  version?: string;
}

/**
 * Copies the agent bundle (and its companion files) into a directory every user can read but
 * only we can write (0755/0644), atomically (write then rename), and returns the installed
 * agent's path. Safe to call from parallel processes: they write the same bytes. Not forced to
 * disk: every install checks each file's hash first, so one a power loss left short is written
 * again (the fsyncs cost the first start after each build one per file and one per rename).
 */
export function installAgentBundle(opts: InstallAgentOptions = {}): string {
  const source = opts.source ?? agentBundlePath();
  const files = agentFiles(source);
  const all = createHash('sha256');
  for (const f of files) all.update(f.name).update(f.hash);
  const dir = opts.dir ?? join(tmpdir(), `${SHARED_INSTALL_PREFIX}${all.digest('hex').slice(0, SHARED_INSTALL_HASH_CHARS)}`);
  makeDirs(dir, { mode: 0o755 });
  // Not ours, or others may write to it: they could swap the agent.
  checkOwnDir(dir, 'the agent bundle dir');
  chmodSync(dir, 0o755);
  if (opts.dir === undefined) {
    // Marked as used now (its age is the time since its last install), and the other builds'
    // installs there that nothing has used for long go.
    const now = new Date();
    utimesSync(dir, now, now);
    removeStaleInstalls(dir, now.getTime());
  }
  for (const f of files) {
    const target = join(dir, f.name);
    if (!existsSync(target) || sha256(readFileSync(target)) !== f.hash) writeFileAtomic(target, f.bytes, 0o644, { durable: false });
  }
  const pkg = `${JSON.stringify({ name: 'gaxx-agent', version: opts.version ?? packageVersion(source) ?? '0.0.0', type: 'module', private: true })}\n`;
  const pkgPath = join(dir, 'package.json');
  if (!existsSync(pkgPath) || readFileSync(pkgPath, 'utf8') !== pkg) writeFileAtomic(pkgPath, pkg, 0o644, { durable: false });
  return join(dir, AGENT_BUNDLE_FILE);
}

/** The shared installs' names in the temp dir: this prefix and the start of the bundle's hash. */
const SHARED_INSTALL_PREFIX = 'gaxx-agent-';
const SHARED_INSTALL_HASH_CHARS = 16;
const SHARED_INSTALL = new RegExp(`^${SHARED_INSTALL_PREFIX}[0-9a-f]{${SHARED_INSTALL_HASH_CHARS}}$`);
/**
 * A shared install of another build that no install has touched for this long is removed (every
 * build that installs there leaves 4 MiB otherwise). A day: any run of that build still going
 * (tests, benches) installs it again at each agent it starts, which keeps it young.
 */
export const STALE_INSTALL_MS = 24 * 3600 * 1000;

/** Removes the shared installs beside `keep` (ours, other builds, unused for STALE_INSTALL_MS); best effort. */
function removeStaleInstalls(keep: string, now: number): void {
  const root = dirname(keep);
  const uid = process.getuid?.();
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    const p = join(root, name);
    if (!SHARED_INSTALL.test(name) || p === keep) continue;
    try {
      const st = lstatSync(p);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || now - st.mtimeMs < STALE_INSTALL_MS) continue;
      rmSync(p, { recursive: true, force: true });
    } catch {
      // Gone meanwhile, or not ours to remove: left.
    }
  }
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The agent bundle and the companion files the build made beside it. */
function agentFiles(source: string): Array<{ name: string; bytes: Buffer; hash: string }> {
  const files = [{ name: AGENT_BUNDLE_FILE, bytes: readFileSync(source) }];
  for (const name of AGENT_COMPANION_FILES) {
    const p = join(dirname(source), name);
    if (existsSync(p)) files.push({ name, bytes: readFileSync(p) });
  }
  return files.map((f) => ({ ...f, hash: sha256(f.bytes) }));
}
