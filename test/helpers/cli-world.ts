/**
 * A world for the built CLI's e2e tests: a GAXX_HOME after `gaxx init`, a real redis-server
 * (GAXX_REDIS_URL), and N agents, each with its own certificate naming fleet/host, registered
 * as one fleet in the scheduler's registry. Call `close()` in afterAll.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FleetCa, writeCertDir } from '../../certs/index.js';
import { createRedis, redisSettingsFromUrl, registerFleet, waitReady } from '../../scheduler/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from './agent.js';
import { startRedis, type TestRedis } from './redis.js';

export const CLI_MAIN = resolve('dist/cli/main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

export interface CliWorld {
  home: string;
  redis: TestRedis;
  agents: AgentProcess[];
  /** host name (h1, h2, ...) of each agent, in order. */
  hosts: string[];
  fleet: string;
  env: Record<string, string>;
  gaxx(args: string[], opts?: { input?: string | Buffer; cwd?: string }): Promise<CliResult>;
  /** Starts the CLI as a child process (stdout/stderr collected). */
  spawnGaxx(args: string[]): { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> };
  close(): Promise<void>;
}

/** Sets up the world: init, redis, `count` agents in fleet `fleet`. */
export async function cliWorld(count: number, fleet = 'tf'): Promise<CliWorld> {
  const home = mkdtempSync(join(tmpdir(), 'gxc-'));
  const redis = await startRedis();
  const env = { PATH: process.env.PATH ?? '', GAXX_HOME: home, GAXX_REDIS_URL: redis.url };
  const gaxx = (args: string[], opts: { input?: string | Buffer; cwd?: string } = {}): Promise<CliResult> =>
    new Promise((done) => {
      const child = execFile(
        process.execPath,
        [CLI_MAIN, ...args],
        { env, encoding: 'buffer', maxBuffer: 256 * 1024 * 1024, cwd: opts.cwd },
        (err, stdout, stderr) => {
          done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: stdout.toString(), stderr: stderr.toString(), stdoutBytes: stdout });
        },
      );
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      else child.stdin?.end();
    });
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
  const spawnGaxx = (args: string[]): ReturnType<CliWorld['spawnGaxx']> => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    return { child, out: () => out, err: () => err, exited };
  };
  return {
    home,
    redis,
    agents,
    hosts,
    fleet,
    env,
    gaxx,
    spawnGaxx,
    close: async () => {
      await stopAllAgents();
      await redis.destroy();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
