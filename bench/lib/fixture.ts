/**
 * The bench's world: a temp fleet CA with one agent cert and one operator cert, and two real
 * agent processes (tasks sandboxed, and not) on loopback (as nobody when we are root, via the test helper). `close()` stops
 * the agent and removes the temp dir; it is also run on SIGINT/SIGTERM and, as a last resort,
 * synchronously on process exit, so a failed or interrupted run leaves nothing behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetCa, loadCertDir, type CertBundle } from '../../certs/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from '../../test/helpers/agent.js';
import { issueCertDir } from '../../test/helpers/pki.js';
import { cleanUpOnSignal } from './on-signal.js';

export interface BenchFixture {
  /** The temp dir holding the CA, both cert dirs and the agent's data dir. */
  workDir: string;
  /** The agent as in production: tasks sandboxed, metrics served. */
  agent: AgentProcess;
  /**
   * The same agent started with --unsafe-no-isolation (tasks unsandboxed), for the cost of
   * isolation; its per-caller rate limit is raised above what the bench sends.
   */
  unsafeAgent: AgentProcess;
  /** The operator's cert dir (cert.pem, key.pem, ca.pem) and its loaded bundle. */
  operatorDir: string;
  operator: CertBundle;
  /** The fleet CA, for sections that need more identities (e.g. a second caller). */
  ca: FleetCa;
  /** Stops the agent and removes workDir; safe to call more than once. */
  close(): Promise<void>;
}

export interface FixtureOptions {
  /** The agent's --capacity (concurrent tasks). */
  capacity: number;
  /** Extra environment of both agents (e.g. MALLOC_ARENA_MAX), beside what the helper gives every agent. */
  env?: Record<string, string>;
  /** Start the agents without AGENT_ENV (the allocator settings every agent gets), to compare. */
  noAgentEnv?: boolean;
  /** Start the agents without their metrics listener (every fleet's agents serve one), to compare. */
  noMetrics?: boolean;
}

/** Creates the PKI and starts the agent; on any failure, undoes what it made before rethrowing. */
export async function startFixture(opts: FixtureOptions): Promise<BenchFixture> {
  const workDir = mkdtempSync(join(tmpdir(), 'gaxx-bench-'));
  let agent: AgentProcess | undefined;
  let unsafeAgent: AgentProcess | undefined;
  let closed = false;
  const removeDir = () => rmSync(workDir, { recursive: true, force: true });
  // Last resort when the process dies without close(): no awaiting is possible on 'exit'.
  const onExit = () => {
    agent?.kill('SIGKILL');
    unsafeAgent?.kill('SIGKILL');
    removeDir();
  };
  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    offSignals();
    try {
      // Every agent this process started, including one that never reported it was listening.
      await stopAllAgents();
    } finally {
      removeDir();
      process.off('exit', onExit);
    }
  }
  process.on('exit', onExit);
  const offSignals = cleanUpOnSignal(close);
  try {
    const { ca } = await FleetCa.init(join(workDir, 'ca'));
    const [agentDir, operatorDir] = await Promise.all([
      issueCertDir(ca, join(workDir, 'agent'), { identity: { role: 'agent', fleet: 'bench', host: 'h1' }, hosts: ['127.0.0.1', 'localhost'] }),
      issueCertDir(ca, join(workDir, 'operator'), { identity: { role: 'operator', name: 'bench' } }),
    ]);
    // Metrics served, as every fleet's agents serve them (bootstrap's, the local provider's): what an
    // agent holds and does includes its Prometheus registry and listener.
    const common = {
      certsDir: agentDir.dir,
      metrics: opts.noMetrics !== true,
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.noAgentEnv ? { agentEnv: {} } : {}),
    };
    agent = await startAgent({ ...common, dataDir: join(workDir, 'data'), args: ['--capacity', String(opts.capacity)] });
    // Warm, this agent serves one caller more Execs a second than the production rate limit lets
    // one identity make (500 a second, 1,000 at once): the bench would measure the limit, not
    // Exec. Its limit is raised; the sandboxed agent, which stays under it, keeps the production
    // guards, which the flood section relies on.
    const unlimited = JSON.stringify({ rateLimit: { perSecond: 1_000_000, burst: 1_000_000 } });
    unsafeAgent = await startAgent({
      ...common,
      dataDir: join(workDir, 'data-unsafe'),
      args: ['--capacity', String(opts.capacity), '--unsafe-no-isolation', '--guards', unlimited],
    });
    return { workDir, agent, unsafeAgent, operatorDir: operatorDir.dir, operator: loadCertDir(operatorDir.dir), ca, close };
  } catch (e) {
    await close();
    throw e;
  }
}
