/**
 * A world for the built CLI's e2e tests: a GAXX_HOME after `gaxx init`, a real redis-server
 * (GAXX_REDIS_URL), and N agents, each with its own certificate naming fleet/host, registered
 * as one fleet in the scheduler's registry. Call `close()` in afterAll.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetCa, writeCertDir } from '../../certs/index.js';
import { createRedis, redisSettingsFromUrl, registerFleet, waitReady } from '../../scheduler/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from './agent.js';
import { CLI_MAIN, gaxxEnv, runGaxx, spawnGaxx, stopAllGaxx, type CliRun, type GaxxProcess } from './cli.js';
import { startRedis, type TestRedis } from './redis.js';

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
  gaxx(args: string[], opts?: { input?: string | Buffer; cwd?: string }): Promise<CliRun>;
  /** Starts the CLI as a child process (stdin piped); close() stops it if it still runs. */
  spawnGaxx(args: string[]): GaxxProcess;
  close(): Promise<void>;
}

/** Sets up the world: init, redis, `count` agents in fleet `fleet`. */
export async function cliWorld(count: number, fleet = 'tf'): Promise<CliWorld> {
  const home = mkdtempSync(join(tmpdir(), 'gxc-'));
  const redis = await startRedis();
  const world = { home, env: { GAXX_REDIS_URL: redis.url } };
  const env = gaxxEnv(world);
  const gaxx = (args: string[], opts: { input?: string | Buffer; cwd?: string } = {}): Promise<CliRun> => runGaxx(args, { ...world, ...opts });
  const init = await gaxx(['init', '--name', 'alice']);
  if (init.code !== 0) throw new Error(`gaxx init failed: ${init.stderr}`);
  const ca = FleetCa.open(join(home, 'config', 'ca'));
  const hosts = Array.from({ length: count }, (_, i) => `h${i + 1}`);
  const agents: AgentProcess[] = [];
  for (const host of hosts) {
    const made = await ca.issue({ identity: { role: 'agent', fleet, host }, hosts: ['127.0.0.1'] });
    const certs = join(home, `agent-${host}`);
    mkdirSync(certs, { mode: 0o700 });
    writeCertDir(certs, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem });
    agents.push(await startAgent({ certsDir: certs }));
  }
  const conn = createRedis(redisSettingsFromUrl(redis.url), 'producer');
  await waitReady(conn);
  await registerFleet(
    conn,
    fleet,
    hosts.map((host, i) => ({ host, address: (agents[i] as AgentProcess).address })),
  );
  conn.disconnect();
  return {
    home,
    redis,
    agents,
    hosts,
    fleet,
    env,
    gaxx,
    spawnGaxx: (args) => spawnGaxx(args, { ...world, stdin: 'pipe' }),
    close: async () => {
      await stopAllGaxx();
      await stopAllAgents();
      await redis.destroy();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
