/**
 * `gaxx ui [--fleet F | --agent A,B]`: the dashboard and the local metrics collection. When a
 * scheduler daemon already serves it (and no agent list is asked for), prints that one's URL;
 * otherwise serves it from this process until Ctrl-C, printing the URL with its token.
 */
import { GaxxError } from '../../proto/index.js';
import {
  Dashboard,
  DEFAULT_UI_LISTEN,
  fleetTargets,
  HEARTBEAT_KEY,
  parseAgentItem,
  readBreakers,
  readDashboardUrl,
  TaskQueue,
  registeredFleets,
  type MonitorTarget,
  type RedisTarget,
} from '../../scheduler/index.js';
import { durationFlag, JSON_FLAG, stringFlag, stringsFlag, usageError, type Command } from '../command.js';
import type { Output } from '../output.js';
import { monitorCredentialSource } from '../scheduler-credentials.js';
import type { GaxxConfig } from '../config.js';
import { queueRedis } from '../run/queue-redis.js';
import { withReadyRedis } from '../run/redis-session.js';
import { resolveFleetAgents } from '../fleet/fleet-directory.js';
import { assertFleetName, readFleet } from '../state.js';

const usage = (message: string): GaxxError => usageError('ui', message);

/** Where this process serves when the daemon could not (its address taken, likely still): any free loopback port. */
const FREE_UI_LISTEN = '127.0.0.1:0';

/** The shortest --interval: agents are not asked more often. */
const MIN_INTERVAL_MS = 100;

/**
 * Whether a recorded dashboard URL answers (with its token), within 2 s. `stop` (the command's
 * Ctrl-C) ends the asking at once: CANCELLED, as every wait on a peer that does not answer.
 */
async function answers(url: string, stop: AbortSignal): Promise<boolean> {
  try {
    const u = new URL(url);
    u.pathname = '/api/state';
    const res = await fetch(u, { signal: AbortSignal.any([AbortSignal.timeout(2000), stop]) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    if (stop.aborted) throw new GaxxError('CANCELLED', `stopped while asking the scheduler daemon's dashboard at ${new URL(url).host} whether it serves`);
    return false;
  }
}

/**
 * NOT_FOUND for a fleet gaxx does not know, as every other command says: known means recorded in
 * the state (gaxx ls) or registered in the queue's Redis. A fleet of the state that Redis lost is
 * registered again (resolveFleetAgents), so that the dashboard finds its agents.
 */
async function assertFleetsKnown(config: GaxxConfig, fleets: string[], out: Output, stop: AbortSignal): Promise<void> {
  if (!fleets.length) return;
  const unknown = await withReadyRedis(
    config,
    async (redis) => {
      const registered = new Set(await registeredFleets(redis));
      const recorded = new Set(fleets.filter((f) => readFleet(config.paths.fleetsDir, f)));
      for (const f of recorded) await resolveFleetAgents(config, redis, f, out);
      return fleets.find((f) => !registered.has(f) && !recorded.has(f));
    },
    stop,
  );
  if (unknown !== undefined) throw new GaxxError('NOT_FOUND', `unknown fleet '${unknown}' (see 'gaxx ls')`);
}

function logTo(out: Output) {
  const line = (level: string) => (obj: object, msg?: string) => out.note(JSON.stringify({ level, time: Date.now(), component: 'ui', ...obj, msg }));
  return { info: () => undefined, warn: line('warn'), error: line('error') };
}

export const command: Command = {
  usage: 'gaxx ui [--fleet F[,F...] | --agent ADDR[,ADDR...]] [--listen ADDR] [--interval D] [--json]',
  description: [
    'The dashboard: fleets and agents (reachable, version, uid, load, tasks and capacity,',
    'certificate expiry, breaker state, blocked peers), runs (progress, rate, ETA, throughput per',
    'host with slow hosts flagged, failures with the tail of their output, cancel), queue depth,',
    "with live updates. Also serves /metrics: this collection's view of every agent (up = 0 when a",
    "scrape fails) and every agent's own series labelled with fleet and host, for a local",
    'Prometheus. Agents are asked over mTLS with a monitor certificate kept in',
    '<state>/monitor/certs (issued from the local CA on first use, and anew, with a note, when the',
    "CA's list revokes it or it is due, also while this runs), every --interval while someone",
    'watches (the page open, or a request within 2 minutes; the next request resumes it).',
    'When `gaxx scheduler` runs, it serves the dashboard itself and this command prints its URL.',
    'Otherwise this process serves it until Ctrl-C (when the daemon runs without one, its address',
    'taken, this says why and serves it on a free port unless --listen says where). The URL',
    'carries a random token: requests',
    'without it are refused (401). Loopback only: --listen takes localhost or a loopback address',
    '(127.0.0.0/8, ::1); any other host name is refused, whatever it looks like, since DNS resolves',
    'it. --fleet F: the URL printed (of this process or of',
    "the daemon's dashboard) shows only those fleets' agents, runs and cost (its ?fleet=F). Breaker",
    'states are those the running scheduler daemons hold (unknown when none dispatched to the agent).',
    '--agent takes HOST:PORT (metrics on HOST:9091) or HOST:PORT/METRICS_PORT.',
  ].join('\n'),
  flags: {
    fleet: { type: 'string', valueName: 'F[,F...]', multiple: true, help: 'watch only these registered fleets (default: all)' },
    agent: { type: 'string', valueName: 'ADDR[,ADDR...]', multiple: true, help: 'watch these agents instead of the registered fleets' },
    listen: {
      type: 'string',
      valueName: 'ADDR',
      help: `where to serve: localhost or a loopback address (default ${DEFAULT_UI_LISTEN}; port 0 picks a free one)`,
    },
    interval: { type: 'string', valueName: 'D', help: `time between looks at the agents: 500ms, 5s, 1m; at least ${MIN_INTERVAL_MS}ms (default 5s)` },
    json: { ...JSON_FLAG, help: 'print {"url": ..., "served": "here"|"daemon"} as JSON instead of text' },
  },
  handlesInterrupt: true,
  interruptNote: 'stopping the dashboard',
  examples: ['gaxx ui', 'gaxx ui --fleet web', 'gaxx ui --agent 10.0.0.5:8088,10.0.0.6:8088 --listen 127.0.0.1:0'],
  async run({ flags, config, out, signal }) {
    const fleets = stringsFlag(flags, 'fleet')
      .flatMap((f) => f.split(','))
      .filter(Boolean);
    const agents = stringsFlag(flags, 'agent')
      .flatMap((a) => a.split(','))
      .filter(Boolean);
    if (fleets.length && agents.length) throw usage('give --fleet or --agent, not both');
    for (const f of fleets) assertFleetName(f);
    const list: MonitorTarget[] = agents.map((a) => parseAgentItem(a.includes(':') ? a : `${a}:${config.agent.port}`));
    const intervalMs = durationFlag(flags, 'interval', 'ui', MIN_INTERVAL_MS) ?? 5000;
    // The page, its event stream and /api/state filter by ?fleet= (served here or by the daemon).
    const withFleets = (url: string): string => {
      if (!fleets.length) return url;
      const u = new URL(url);
      u.searchParams.set('fleet', fleets.join(','));
      return u.toString();
    };
    const print = (raw: string, served: 'daemon' | 'here'): void => {
      const url = withFleets(raw);
      return out.json
        ? out.writeOut(`${JSON.stringify({ url, served })}\n`)
        : out.writeOut(`${served === 'daemon' ? 'The scheduler daemon serves the dashboard' : 'Dashboard (Ctrl-C to stop)'}: ${url}\n`);
    };
    await assertFleetsKnown(config, fleets, out, signal);
    const recorded = readDashboardUrl(config.paths.stateDir);
    if (!agents.length && recorded?.url !== undefined && (await answers(recorded.url, signal))) {
      print(recorded.url, 'daemon');
      return 0;
    }
    // A daemon that runs without its dashboard (its address was taken when it started) is said
    // here, not only in its log; this process serves it, on a free port unless --listen says.
    const daemonWithout = !agents.length && recorded?.error !== undefined ? recorded : undefined;
    if (daemonWithout) out.note(`gaxx: the scheduler daemon (pid ${daemonWithout.pid}) serves no dashboard: ${daemonWithout.error}; serving it here`);
    // Asked again before every round: a monitor certificate revoked while this runs is re-issued.
    const note = (text: string): void => out.note(`gaxx: ${text}`);
    const creds = await monitorCredentialSource(config.paths, { note, error: note });
    // Fleets and runs live in Redis; an --agent list alone needs none, but shows runs when there is one.
    let target: RedisTarget | undefined;
    let queue: TaskQueue | undefined;
    if (!agents.length || config.redis.url) {
      target = await queueRedis(config, signal);
      queue = await TaskQueue.open(target.settings, 5000, 'producer', signal).catch(async (e: unknown) => {
        await target?.release();
        throw e;
      });
    }
    try {
      const redis = queue?.redis;
      const dash = await Dashboard.start({
        listen: stringFlag(flags, 'listen') ?? (daemonWithout ? FREE_UI_LISTEN : DEFAULT_UI_LISTEN),
        // A daemon's dashboard that answers is used without listening (unless --agent is given): here none did.
        inUse:
          'is a gaxx ui, or a scheduler daemon whose dashboard did not answer, serving it? Serve on any free port with --listen 127.0.0.1:0' +
          (agents.length ? " (without --agent, 'gaxx ui' prints a running daemon's dashboard URL instead of serving one)" : ''),
        creds,
        targets: agents.length || !redis ? async () => list : () => fleetTargets(redis, fleets.length ? fleets : undefined),
        ...(queue ? { redis: queue.redis, depth: () => (queue as TaskQueue).depth() } : {}),
        // No worker here: the breakers are those the running daemons publish.
        ...(redis ? { breakers: async () => readBreakers(redis, await redis.zrangebyscore(HEARTBEAT_KEY, Date.now(), '+inf')) } : {}),
        scrapeIntervalMs: intervalMs,
        log: logTo(out),
      });
      print(dash.url, 'here');
      // A Ctrl-C while it started is no event any more: it stops the dashboard now.
      if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      await dash.stop();
      return 0;
    } finally {
      await queue?.close();
      await target?.release();
    }
  },
};
