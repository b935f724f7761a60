/**
 * A world for the built CLI's e2e tests: a GAXX_HOME after `gaxx init`, a real redis-server
 * (GAXX_REDIS_URL), and N agents, each with its own certificate naming fleet/host, registered
 * as one fleet in the scheduler's registry. Call `close()` in afterAll.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetCa } from '../../certs/index.js';
import { createRedis, redisSettingsFromUrl, registerFleet, waitReady } from '../../scheduler/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from './agent.js';
import { CLI_MAIN, gaxxEnv, runGaxx, spawnGaxx, stopAllGaxx, type CliRun, type GaxxProcess, type RunGaxxOptions } from './cli.js';
import { issueCertDir } from './pki.js';
import { freePort } from './ports.js';
import { startRedis, type TestRedis, type TestRedisOptions } from './redis.js';

export { CLI_MAIN };

export interface CliWorld {
  home: string;
  redis: TestRedis;
  agents: AgentProcess[];
  /** host name (h1, h2, ...) of each agent, in order. */
  hosts: string[];
  fleet: string;
  /** The CLI's environment: PATH, GAXX_HOME, GAXX_REDIS_URL. */
  env: Record<string, string>;
  gaxx(args: string[], opts?: Pick<RunGaxxOptions, 'input' | 'cwd' | 'redirect'>): Promise<CliRun>;
  /** Starts the CLI as a child process (stdin piped); close() stops it if it still runs. */
  spawnGaxx(args: string[]): GaxxProcess;
  /** Starts `gaxx scheduler --metrics-listen 127.0.0.1:0 ...args` (spawnGaxx) and waits until it says it started. */
  startDaemon(args?: string[]): Promise<GaxxProcess>;
  /** A new temp dir (`<tmpdir>/<prefix>XXXXXX`) for the test's own files; close() removes it. */
  scratch(prefix: string): string;
  close(): Promise<void>;
}

/** A new GAXX_HOME (a temp dir named `prefix...`) after `gaxx init --name alice`. */
export async function initHome(prefix: string): Promise<string> {
  const home = mkdtempSync(join(tmpdir(), prefix));
  const init = await runGaxx(['init', '--name', 'alice'], { home });
  if (init.code !== 0) throw new Error(`gaxx init failed: ${init.stderr}`);
  return home;
}

/** A cert dir for agent `host` of `fleet` (on 127.0.0.1), issued by `home`'s CA, at `<home>/agent-<host>`. */
export async function homeAgentCerts(home: string, fleet = 'adhoc', host = 'h1'): Promise<string> {
  const ca = FleetCa.open(join(home, 'config', 'ca'));
  return (await issueCertDir(ca, join(home, `agent-${host}`), { identity: { role: 'agent', fleet, host }, hosts: ['127.0.0.1'] })).dir;
}

/** Sets up the world: init, redis, `count` agents in fleet `fleet`; `agentArgs` by host name (h1...) adds to an agent's flags. */
export async function cliWorld(count: number, fleet = 'tf', agentArgs: Record<string, string[]> = {}): Promise<CliWorld> {
  const home = await initHome('gxc-');
  const redis = await startRedis();
  const world = { home, env: { GAXX_REDIS_URL: redis.url } };
  const env = gaxxEnv(world);
  const gaxx = (args: string[], opts: Pick<RunGaxxOptions, 'input' | 'cwd' | 'redirect'> = {}): Promise<CliRun> => runGaxx(args, { ...world, ...opts });
  const hosts = Array.from({ length: count }, (_, i) => `h${i + 1}`);
  const agents: AgentProcess[] = [];
  for (const host of hosts) agents.push(await startAgent({ certsDir: await homeAgentCerts(home, fleet, host), args: agentArgs[host] ?? [] }));
  const conn = createRedis(redisSettingsFromUrl(redis.url), 'producer');
  await waitReady(conn);
  await registerFleet(
    conn,
    fleet,
    hosts.map((host, i) => ({ host, address: (agents[i] as AgentProcess).address })),
  );
  conn.disconnect();
  const scratchDirs: string[] = [];
  return {
    home,
    redis,
    agents,
    hosts,
    fleet,
    env,
    gaxx,
    spawnGaxx: (args) => spawnGaxx(args, { ...world, stdin: 'pipe' }),
    startDaemon: async (args = []) => {
      const daemon = spawnGaxx(['scheduler', '--metrics-listen', '127.0.0.1:0', ...args], { ...world, stdin: 'pipe' });
      await daemon.line('stderr', (l) => l.includes('"scheduler started"'));
      return daemon;
    },
    scratch: (prefix) => {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      scratchDirs.push(dir);
      return dir;
    },
    close: async () => {
      await stopAllGaxx();
      await stopAllAgents();
      await redis.destroy();
      for (const dir of [home, ...scratchDirs.splice(0)]) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A GAXX_HOME after `gaxx init` with a real redis-server (GAXX_REDIS_URL) and a free agent port
 * (GAXX_AGENT_PORT), for tests that spawn local fleets with the built CLI. `close()` (afterAll)
 * stops the CLIs it started, deletes the local fleets a failed test left, stops Redis and
 * removes the home.
 */
export interface LocalFleetHome {
  home: string;
  redis: TestRedis;
  env: Record<string, string>;
  gaxx(args: string[]): Promise<CliRun>;
  close(): Promise<void>;
}

export async function localFleetHome(prefix: string, redisOptions: TestRedisOptions = {}, timeoutMs = 300_000): Promise<LocalFleetHome> {
  const home = await initHome(prefix);
  const redis = await startRedis(redisOptions);
  const env = { GAXX_REDIS_URL: redis.url, GAXX_AGENT_PORT: String(await freePort()) };
  const gaxx = (args: string[]): Promise<CliRun> => runGaxx(args, { home, env, timeoutMs });
  return {
    home,
    redis,
    env,
    gaxx,
    close: async () => {
      await stopAllGaxx();
      const ls = existsSync(join(home, 'state', 'fleets')) ? await gaxx(['ls', '--json']) : undefined;
      if (ls?.code === 0) for (const f of JSON.parse(ls.stdout) as { fleet: string }[]) await gaxx(['delete', f.fleet, '--yes']);
      await redis.destroy();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
