/** `gaxx status [F] [--agent A,B] [--json]`: per agent health, load, capacity, certificate and breaker. */
import { compareText, exitCodeFor, isGaxxError, printable, type ErrorCode } from '../../proto/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { agentKey, HEARTBEAT_KEY, readBreakers, registeredFleets } from '../../scheduler/index.js';
import { durationFlag, JSON_FLAG, type Command } from '../command.js';
import type { GaxxConfig } from '../config.js';
import { renderTable, type Output } from '../output.js';
import { resolveFleetAgents } from '../fleet/fleet-directory.js';
import { listFleets } from '../state.js';
import { agentTargets, operatorCreds, parallelMap, type Target } from '../fleet/targets.js';
import type { RedisClient } from '../run/run-shared.js';
import { withReadyRedis } from '../run/redis-session.js';
import { GaxxError } from '../../proto/index.js';

/** One agent's status row. */
export interface AgentStatus {
  host: string;
  address: string;
  reachable: boolean;
  version?: string;
  uid?: number;
  runningTasks?: number;
  capacity?: number;
  load?: number[];
  certNotAfter?: string;
  certRenewalDue?: boolean;
  /** As the running scheduler daemons see it; `unknown` when no daemon has dispatched to it. */
  breaker: string;
  blockedPeers?: { address: string; until: string; reason: string }[];
  error?: { code: ErrorCode; message: string };
}

/** The targets and the daemons' breaker view, in one Redis session. */
async function lookup(
  config: GaxxConfig,
  out: Output,
  redis: RedisClient,
  fleet: string | undefined,
  agents: Target[],
): Promise<{ targets: Target[]; breakers: Map<string, string> }> {
  let targets = agents;
  if (agents.length === 0) {
    // Every registered fleet and every fleet of this home's state (registered again when Redis lost it).
    const fleets = fleet
      ? [fleet]
      : [...new Set([...(await registeredFleets(redis)), ...listFleets(config.paths.fleetsDir).map((f) => f.fleet)])].sort(compareText);
    targets = [];
    for (const f of fleets)
      targets.push(...(await resolveFleetAgents(config, redis, f, out)).map((a) => ({ name: a.host, address: a.address, expect: { fleet: f, host: a.host } })));
    if (fleet && targets.length === 0) throw new GaxxError('NOT_FOUND', `unknown fleet '${fleet}' (no agents registered for it)`);
  }
  const daemons = await redis.zrangebyscore(HEARTBEAT_KEY, Date.now(), '+inf');
  return { targets, breakers: await readBreakers(redis, daemons) };
}

/** How long to wait for each agent: to connect, and for its answer. */
interface Waits {
  deadlineMs: number;
  connectTimeoutMs: number;
}

async function probe(t: Target, config: GaxxConfig, breaker: string, waits: Waits): Promise<AgentStatus> {
  const c = AgentClient.connect({ address: t.address, ...(t.expect ? { expect: t.expect } : {}) }, operatorCreds(config), {
    ...waits,
    token: config.agent.token,
  });
  try {
    const i = await c.info();
    return {
      host: t.name,
      address: t.address,
      reachable: true,
      version: i.version,
      uid: i.uid,
      runningTasks: i.runningTasks,
      capacity: i.capacity,
      load: i.loadAverage.map((x) => Math.round(x * 100) / 100),
      certNotAfter: new Date(Number(i.certNotAfterUnixMs)).toISOString(),
      certRenewalDue: i.certRenewalDue,
      breaker,
      blockedPeers: i.blockedPeers.map((p) => ({ address: p.address, until: new Date(Number(p.untilUnixMs)).toISOString(), reason: p.reason })),
    };
  } catch (e) {
    return {
      host: t.name,
      address: t.address,
      reachable: false,
      breaker,
      error: { code: isGaxxError(e) ? e.code : 'INTERNAL', message: (e as Error).message },
    };
  } finally {
    c.close();
  }
}

export const command: Command = {
  usage: 'gaxx status [F | --fleet F] [--agent ADDR[,ADDR...]] [--timeout D] [--json]',
  description: [
    'Asks every agent of fleet F (all registered fleets without F, or the --agent addresses) for',
    'its Info over mTLS: reachable, version, uid, running tasks, capacity, load, certificate',
    'expiry (and whether renewal is due), blocked peers; plus the breaker state the running',
    'scheduler daemons hold for it (unknown when none dispatched to it): for the fleet host at',
    "that address, never another fleet's agent that held the address before; with --agent, for",
    'tasks sent to the bare address (`agents` runs). Unreachable hosts are named with the',
    'reason on stderr. Exit 0 when every agent answered, 12 when some did not.',
  ].join('\n'),
  flags: {
    agent: { type: 'string', valueName: 'ADDR[,ADDR...]', multiple: true, help: 'agent addresses instead of a fleet' },
    timeout: {
      type: 'string',
      valueName: 'D',
      help: 'how long to wait for each agent, to connect and to answer, e.g. 3s (default: the global --connect-timeout-ms to connect, 5000, and --deadline-ms for the answer, 10000)',
    },
    json: { ...JSON_FLAG, help: 'print one JSON array, one object per agent' },
  },
  positionals: { names: ['F'], min: 0, complete: 'fleet' },
  examples: ['gaxx status web', "gaxx status --json | jq '.[] | select(.reachable | not) | .host'"],
  async run({ flags, positionals, config, out }) {
    const agents = agentTargets(flags, config.agent.port, 'status');
    const fleet = positionals[0];
    if (fleet && agents.length) throw new GaxxError('USAGE', "give a fleet or --agent, not both (see 'gaxx status --help')");
    // --timeout bounds both; else the installation's agent-call settings (--deadline-ms, --connect-timeout-ms, as every command that calls agents).
    const timeout = durationFlag(flags, 'timeout', 'status');
    const waits: Waits = timeout
      ? { deadlineMs: timeout, connectTimeoutMs: timeout }
      : { deadlineMs: config.agent.deadlineMs, connectTimeoutMs: config.agent.connectTimeoutMs };
    const { targets, breakers } = await withReadyRedis(config, (redis) => lookup(config, out, redis, fleet, agents));
    const rows = await parallelMap(out, 'gaxx status', targets, 32, (t) => probe(t, config, breakers.get(agentKey(t)) ?? 'unknown', waits));
    const down = rows.filter((r) => !r.reachable);
    out.result(rows, () =>
      rows.length === 0
        ? 'no agents registered'
        : renderTable(rows, [
            { header: 'HOST', get: (r) => r.host },
            { header: 'ADDRESS', get: (r) => r.address },
            { header: 'UP', get: (r) => (r.reachable ? 'yes' : 'NO') },
            { header: 'VERSION', get: (r) => r.version ?? '-' },
            { header: 'UID', get: (r) => (r.uid === undefined ? '-' : String(r.uid)) },
            { header: 'TASKS', get: (r) => (r.reachable ? `${r.runningTasks}/${r.capacity}` : '-') },
            { header: 'LOAD', get: (r) => r.load?.join(' ') ?? '-' },
            { header: 'CERT EXPIRES', get: (r) => (r.certNotAfter ? `${r.certNotAfter.slice(0, 16)}Z${r.certRenewalDue ? ' (renewal due)' : ''}` : '-') },
            { header: 'BREAKER', get: (r) => r.breaker },
            { header: 'BLOCKED', get: (r) => (r.blockedPeers?.length ? r.blockedPeers.map((p) => p.address).join(',') : '-') },
          ]),
    );
    // Why some did not answer is a diagnostic: on stderr (the JSON rows carry it as `error`).
    if (down.length && !out.json) out.note(`gaxx: unreachable: ${printable(down.map((r) => `${r.host} (${r.error?.code}: ${r.error?.message})`).join('; '))}`);
    return down.length ? exitCodeFor('UNAVAILABLE') : 0;
  },
};
