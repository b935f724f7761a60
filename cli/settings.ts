/**
 * The CLI's settings table and global flags, as plain data, and the config file reader: what
 * `gaxx --help` and main.ts need, without the validation in config.ts (zod), so that
 * `gaxx --version` and `gaxx --help` load next to nothing.
 */
import { readFileSync } from 'node:fs';
import { fileAccessError, GaxxError, MAX_DURATION_MS } from '../proto/index.js';
import { editDistance, suggest } from './suggest.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One setting reachable from the environment and (optionally) a global flag. */
export interface Setting {
  /** Dot-path in the config file. */
  path: string;
  env: string;
  flag?: string;
  kind: 'string' | 'int' | 'duration' | 'bool';
  /** The command whose flag this is; unscoped flags are global (accepted by every command). */
  scope?: 'scheduler';
  /** An empty value is a value (e.g. '' turns metrics off) rather than "not set". */
  allowEmpty?: boolean;
  /** Smallest and largest value of an int setting (in its help, and checked from every source). */
  range?: readonly [number, number];
  /** Smallest value of a duration setting in ms (largest: MAX_DURATION_MS). */
  minMs?: number;
  /** The only values a string setting takes (its flag's completion offers them). */
  values?: readonly string[];
  /** Placeholder of a string setting's flag in help (default VALUE; N for an int, D for a duration). */
  valueName?: string;
  help: string;
}

/** Env vars and global flags; one row per setting. */
export const SETTINGS: readonly Setting[] = [
  { path: 'operatorName', env: 'GAXX_OPERATOR_NAME', kind: 'string', help: 'default operator name' },
  {
    path: 'logLevel',
    env: 'GAXX_LOG_LEVEL',
    flag: 'log-level',
    kind: 'string',
    valueName: 'LEVEL',
    values: LOG_LEVELS,
    help: `log level of gaxx scheduler's JSON logs, the only command that logs (${LOG_LEVELS.join('|')})`,
  },
  { path: 'agent.port', env: 'GAXX_AGENT_PORT', kind: 'int', range: [1, 65535], help: 'agent port when an address has none (8088)' },
  {
    path: 'agent.deadlineMs',
    env: 'GAXX_DEADLINE_MS',
    flag: 'deadline-ms',
    kind: 'int',
    range: [1, MAX_DURATION_MS],
    help: `deadline of agent calls in ms (run, exec, status, runs wait, certs rotate and revoke, the scheduler; not cp's transfers), at most ${MAX_DURATION_MS} (10000)`,
  },
  {
    path: 'agent.connectTimeoutMs',
    env: 'GAXX_CONNECT_TIMEOUT_MS',
    flag: 'connect-timeout-ms',
    kind: 'int',
    range: [1, MAX_DURATION_MS],
    help: `agent connect timeout in ms (run, exec, status, cp, runs wait, certs rotate and revoke, the scheduler), at most ${MAX_DURATION_MS} (5000)`,
  },
  { path: 'agent.token', env: 'GAXX_AGENT_TOKEN', kind: 'string', help: "the agents' bearer token, when they require one (env or config file only)" },
  { path: 'providers.linode.url', env: 'GAXX_LINODE_URL', kind: 'string', help: 'Linode API base URL' },
  { path: 'providers.vultr.url', env: 'GAXX_VULTR_URL', kind: 'string', help: 'Vultr API base URL' },
  {
    path: 'redis.url',
    env: 'GAXX_REDIS_URL',
    flag: 'redis-url',
    kind: 'string',
    valueName: 'URL',
    help: 'Redis URL, for the commands that use the queue or the fleet registry (default: an embedded redis-server in the state dir)',
  },
  {
    path: 'redis.insecure',
    env: 'GAXX_REDIS_INSECURE',
    flag: 'redis-insecure',
    kind: 'bool',
    help: 'allow a redis:// URL to a non-loopback host with no password and no TLS (refused otherwise: anyone on the path could read and write the queue)',
  },
  {
    path: 'redis.timeoutMs',
    env: 'GAXX_REDIS_TIMEOUT_MS',
    flag: 'redis-timeout-ms',
    kind: 'int',
    range: [1, MAX_DURATION_MS],
    help: `how long a request to Redis may go unanswered, in ms, at most ${MAX_DURATION_MS}: a Redis that keeps the connection but does not answer (stopped, paused, cut off without a reset) is then REDIS_UNAVAILABLE (10000)`,
  },
  {
    path: 'redis.goneMs',
    env: 'GAXX_REDIS_GONE_MS',
    flag: 'redis-gone-ms',
    kind: 'int',
    range: [1, MAX_DURATION_MS],
    help: `how long a run waiting for its results (run, --resume, runs wait) rides out a Redis that is down or does not answer, in ms, at most ${MAX_DURATION_MS}; then it ends REDIS_UNAVAILABLE, its tasks left to --resume (60000)`,
  },
  {
    path: 'stateDir',
    env: 'GAXX_STATE_DIR',
    flag: 'state-dir',
    kind: 'string',
    valueName: 'DIR',
    help: 'state dir (default <home>/state or $XDG_STATE_HOME/gaxx)',
  },
  {
    path: 'scheduler.concurrency',
    env: 'GAXX_SCHEDULER_CONCURRENCY',
    flag: 'concurrency',
    scope: 'scheduler',
    kind: 'int',
    range: [1, 10_000],
    help: 'tasks in flight at once, 1 to 10000 (default 64)',
  },
  {
    path: 'scheduler.maxRuns',
    env: 'GAXX_SCHEDULER_MAX_RUNS',
    flag: 'max-runs',
    scope: 'scheduler',
    kind: 'int',
    range: [1, 10_000],
    help: 'runs served at once, 1 to 10000 (default 100); each is a queue worker with a Redis connection of its own, and more wait for a slot',
  },
  {
    path: 'scheduler.metricsListen',
    env: 'GAXX_SCHEDULER_METRICS_LISTEN',
    flag: 'metrics-listen',
    scope: 'scheduler',
    kind: 'string',
    valueName: 'ADDR',
    allowEmpty: true,
    help: 'host:port for /metrics; empty to disable (default 127.0.0.1:9092); a non-loopback address is served over mTLS',
  },
  {
    path: 'scheduler.uiListen',
    env: 'GAXX_SCHEDULER_UI_LISTEN',
    flag: 'ui-listen',
    scope: 'scheduler',
    kind: 'string',
    valueName: 'ADDR',
    allowEmpty: true,
    help: 'host:port of the dashboard and the collected agent /metrics (see gaxx ui); loopback only; empty to disable (default 127.0.0.1:9090)',
  },
  {
    path: 'scheduler.drain',
    env: 'GAXX_SCHEDULER_DRAIN',
    flag: 'drain',
    scope: 'scheduler',
    kind: 'duration',
    help: 'on shutdown, how long in-flight tasks may finish before being handed back (default 10s)',
  },
  {
    path: 'scheduler.lock',
    env: 'GAXX_SCHEDULER_LOCK',
    flag: 'lock',
    scope: 'scheduler',
    kind: 'duration',
    minMs: 1000,
    help: "job lock: a dead scheduler's tasks are taken again after about this long; at least 1s (default 30s)",
  },
  {
    path: 'scheduler.reapInterval',
    env: 'GAXX_SCHEDULER_REAP_INTERVAL',
    flag: 'reap-interval',
    scope: 'scheduler',
    kind: 'duration',
    help: 'check fleets with a TTL or budget every D and delete those past it; 0 off (default 15s)',
  },
  {
    path: 'scheduler.renewInterval',
    env: 'GAXX_SCHEDULER_RENEW_INTERVAL',
    flag: 'renew-interval',
    scope: 'scheduler',
    kind: 'duration',
    help: "renew the due certificates of registered fleets' agents every D (jittered): 30s, 10m, 1h; 0 off (default 10m)",
  },
];

/**
 * The GAXX_ variables gaxx reads besides the settings' (GAXX_HOME; GAXX_DEBUG, stack traces of
 * errors; GAXX_ENV and GAXX_SPAWN, the agent's mode and how it starts tasks, which a local fleet's
 * agents inherit) and the prefix of the agent's own flags (GAXX_AGENT_...): none of them is a
 * misspelt setting.
 */
const OTHER_ENV = new Set(['GAXX_HOME', 'GAXX_ENV', 'GAXX_DEBUG', 'GAXX_SPAWN']);
const AGENT_PREFIX = 'GAXX_AGENT_';

/**
 * The variables of `env` that look like a misspelt setting (GAXX_REDIS_ULR), each with the one
 * meant: gaxx reads no such variable, so a typo would be ignored without a word (and a Redis URL
 * so lost would put the run on the embedded Redis). Only near misses (at most two edits after
 * GAXX_, one for a name of 6 letters or less, or a setting's name without its last part) are
 * named: other tools' and the agent's GAXX_ variables are not the CLI's settings, and nothing is
 * said about them.
 */
export function misspeltEnv(env: Readonly<Record<string, string | undefined>>): Array<{ name: string; meant: string }> {
  const known = SETTINGS.map((s) => s.env);
  // The settings' names after GAXX_, where the edits are counted.
  const words = known.map((k) => k.slice('GAXX_'.length));
  const out: Array<{ name: string; meant: string }> = [];
  for (const name of Object.keys(env)) {
    if (!name.startsWith('GAXX_') || OTHER_ENV.has(name) || known.includes(name)) continue;
    if (name.startsWith(AGENT_PREFIX) && !known.some((k) => k.startsWith(AGENT_PREFIX) && editDistance(name, k) <= 1)) continue;
    const word = name.slice('GAXX_'.length);
    // A name without its unit (GAXX_DEADLINE for GAXX_DEADLINE_MS) is as near.
    const meant = words.find((k) => k.startsWith(`${word}_`)) ?? suggest(word, words, word.length <= 6 ? 1 : 2);
    if (meant) out.push({ name, meant: `GAXX_${meant}` });
  }
  return out;
}

/** The placeholder of a setting's flag in help. */
function valueNameOf(s: Setting): string {
  return s.valueName ?? (s.kind === 'int' ? 'N' : s.kind === 'duration' ? 'D' : 'VALUE');
}

/** The flags of settings scoped to `command`, for its flag table (so help and parsing agree). */
export function scopedFlags(command: 'scheduler'): Record<string, { type: 'string'; valueName: string; help: string }> {
  return Object.fromEntries(
    SETTINGS.filter((s) => s.scope === command && s.flag).map((s) => [s.flag as string, { type: 'string' as const, valueName: valueNameOf(s), help: s.help }]),
  );
}

/** A global option: accepted by every command, documented in `gaxx --help`. */
export interface GlobalFlag {
  type: 'string' | 'boolean';
  help: string;
  valueName: string;
  /** The only values the flag takes, when they are a fixed set. */
  values?: readonly string[];
}

/** Global flags, merged into every command's options by main.ts. */
export const CONFIG_FLAGS: Record<string, GlobalFlag> = {
  home: { type: 'string', valueName: 'DIR', help: 'relocate all config, keys and state to DIR (as GAXX_HOME)' },
  ...Object.fromEntries(
    SETTINGS.filter((s) => s.flag && !s.scope).map((s) => [
      s.flag as string,
      {
        type: s.kind === 'bool' ? ('boolean' as const) : ('string' as const),
        valueName: valueNameOf(s),
        help: s.help,
        ...(s.values ? { values: s.values } : {}),
      },
    ]),
  ),
};

/** Reads a file's text, or undefined when it does not exist. */
export type ReadFile = (path: string) => string | undefined;

/** The default config file reader for main.ts. */
export const readFileIfExists: ReadFile = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    const fsErr = fileAccessError(e, `check the owner and mode of ${path} and its directories (ls -ld), or point GAXX_HOME (--home) at a directory you own`);
    if (fsErr) throw fsErr;
    throw new GaxxError('CONFIG_INVALID', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
};
