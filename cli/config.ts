/**
 * The installation's configuration, for every process gaxx starts on the controller (the CLI's
 * commands and the scheduler daemon, which is `gaxx scheduler`): paths, defaults (one table,
 * DEFAULTS) and precedence, loaded once in main.ts by one pure function. Precedence:
 * defaults < `<configDir>/config.json` < `GAXX_*` env < flags. Nothing below main.ts reads
 * process.env; commands get the resulting GaxxConfig.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GaxxError, parseDuration } from '../proto/index.js';
import { deepMerge, layerFrom, readConfigFile, type ConfigLayer } from './config-layers.js';
import { resolvePaths, type GaxxPaths } from './paths.js';
import { Secret } from './secrets.js';
import { CONFIG_FLAGS, SETTINGS, type LogLevel, type ReadFile } from './settings.js';

export { readFileIfExists } from './settings.js';
export { CONFIG_FLAGS, LOG_LEVELS, SETTINGS, scopedFlags, type GlobalFlag, type LogLevel, type Setting } from './settings.js';

/** The resolved configuration every command receives. */
export interface GaxxConfig {
  paths: GaxxPaths;
  /** Default operator name (certificate identity `spiffe://gaxx/operator/<name>`). */
  operatorName: string;
  logLevel: LogLevel;
  agent: {
    /** Port assumed when an agent address has none. */
    port: number;
    /** Default deadline of unary agent calls. */
    deadlineMs: number;
    /** How long to wait for an agent connection before UNAVAILABLE. */
    connectTimeoutMs: number;
    /** Bearer token for agents that require one (GAXX_AGENT_TOKEN or agent.token); never a flag. */
    token?: string | undefined;
  };
  redis: {
    /** The queue's Redis; undefined: the embedded redis-server in the state dir. */
    url: string | undefined;
    /** Accept a plaintext, password-less redis:// URL to a non-loopback host (refused by default). */
    insecure: boolean;
    /** How long a request may go unanswered before REDIS_UNAVAILABLE (every producer connection's command timeout). */
    timeoutMs: number;
    /** How long a run's wait rides out an unreachable Redis before it ends REDIS_UNAVAILABLE. */
    goneMs: number;
  };
  /** The scheduler daemon (`gaxx scheduler`). */
  scheduler: {
    /** Tasks in flight at once. */
    concurrency: number;
    /** Runs served at once (each a BullMQ worker with a connection of its own); more wait for a slot. */
    maxRuns: number;
    /** host:port of its /metrics; '' for off. */
    metricsListen: string;
    /** host:port of the dashboard and the collected /metrics (scheduler/ui); '' for off. */
    uiListen: string;
    /** On shutdown, how long in-flight tasks may finish before being handed back. */
    drainMs: number;
    /** Job lock: a dead scheduler's tasks are taken again after about this long. */
    lockMs: number;
    /** Agent certificate renewal interval; 0 off. */
    renewIntervalMs: number;
    /** How often fleets with a TTL or budget are checked; 0: never. */
    reapIntervalMs: number;
  };
  /** Cloud provider settings by provider name (base URL, create defaults, a token from the env). */
  providers: Record<string, ProviderConfig>;
}

/** One provider's resolved settings. */
export interface ProviderConfig {
  /** API base URL; undefined: the provider's public endpoint. */
  url: string | undefined;
  region: string | undefined;
  type: string | undefined;
  image: string | undefined;
  /** The API token from the environment (LINODE_TOKEN, VULTR_API_KEY), kept out of logs and JSON. */
  envToken: Secret | undefined;
}

/** Env vars holding provider tokens (secrets.env uses the same names). */
export const PROVIDER_TOKEN_ENV: Readonly<Record<string, string>> = { linode: 'LINODE_TOKEN', vultr: 'VULTR_API_KEY' };

/**
 * What the config gives every agent client a command makes (AgentClient, agentConnector): the
 * unary call deadline, the connect timeout, the agents' bearer token.
 */
export function agentClientOptions(config: Pick<GaxxConfig, 'agent'>): { deadlineMs: number; connectTimeoutMs: number; token: string | undefined } {
  return { deadlineMs: config.agent.deadlineMs, connectTimeoutMs: config.agent.connectTimeoutMs, token: config.agent.token };
}

/** Every default of the installation, in one place. */
export const DEFAULTS = {
  logLevel: 'info' as LogLevel,
  agent: { port: 8088, deadlineMs: 10_000, connectTimeoutMs: 5_000 },
  redis: { timeoutMs: 10_000, goneMs: 60_000 },
  scheduler: {
    concurrency: 64,
    maxRuns: 100,
    metricsListen: '127.0.0.1:9092',
    uiListen: '127.0.0.1:9090',
    drainMs: 10_000,
    lockMs: 30_000,
    renewIntervalMs: 10 * 60_000,
    reapIntervalMs: 15_000,
  },
} as const;

export type { ReadFile } from './settings.js';

export interface LoadConfigInput {
  /** The command line (global flags are picked out of it; `--` ends them). */
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  readFile: ReadFile;
  /** Home directory for the XDG defaults (default: env.HOME): read (it may be a getter) only when a default path needs it. */
  readonly homeDir?: string;
  /** OS user name, for the default operator name: read (it may be a getter) only when the config's operatorName is. */
  readonly userName?: string;
  /** Base for a relative GAXX_HOME (default '/'). */
  cwd?: string;
  /** The command being run: its scoped settings' flags are read from argv too. */
  command?: string;
}

/** Loads the configuration. CONFIG_INVALID (file, env) or USAGE (flags) name the dot-path. */
export function loadConfig(input: LoadConfigInput): GaxxConfig {
  const flagSettings = SETTINGS.filter((s) => s.flag && (!s.scope || s.scope === input.command));
  const flags = parseArgs({
    args: [...input.argv],
    options: Object.fromEntries(['home', ...flagSettings.map((s) => s.flag as string)].map((k) => [k, { type: CONFIG_FLAGS[k]?.type ?? ('string' as const) }])),
    strict: false,
    allowPositionals: true,
  }).values;
  // An empty value given on the command line is a mistake (`--home "$UNSET"`), not "use the default".
  for (const [name, v] of Object.entries(flags)) {
    if (v === '' && !flagSettings.some((s) => s.flag === name && s.allowEmpty)) {
      throw new GaxxError('USAGE', `--${name} needs a value; it was given as '' (see 'gaxx ${input.command ? `${input.command} ` : ''}--help')`);
    }
  }
  const flag = (name: string, allowEmpty = false): string | undefined => {
    const v = flags[name];
    if (v === true) return 'true';
    return typeof v === 'string' && (v !== '' || allowEmpty) ? v : undefined;
  };
  const env = (name: string, allowEmpty = false): string | undefined => {
    const v = input.env[name];
    return typeof v === 'string' && (v !== '' || allowEmpty) ? v : undefined;
  };
  const home = flag('home') ?? env('GAXX_HOME');
  const where = (stateDir?: string) => ({
    home: home === undefined ? undefined : resolve(input.cwd ?? '/', home),
    xdgConfigHome: env('XDG_CONFIG_HOME'),
    xdgStateHome: env('XDG_STATE_HOME'),
    // A getter: with GAXX_HOME (or both XDG dirs) set, the home directory is never asked for.
    get homeDir() {
      return input.homeDir ?? env('HOME') ?? '/';
    },
    stateDir,
  });
  let paths = resolvePaths(where());
  const fileLayer = readConfigFile(paths.configFile, input.readFile);
  const envLayer = layerFrom(
    (s) => env(s.env, s.allowEmpty),
    (s) => s.env,
    'CONFIG_INVALID',
    'environment',
  );
  const flagLayer = layerFrom(
    (s) => (s.flag && flagSettings.includes(s) ? flag(s.flag, s.allowEmpty) : undefined),
    (s) => `--${s.flag}`,
    'USAGE',
    'flags',
  );
  const merged = [fileLayer, envLayer, flagLayer].reduce<ConfigLayer>((acc, l) => deepMerge(acc, l), {});
  if (merged.stateDir) paths = resolvePaths(where(merged.stateDir));
  const ms = (d: string | undefined, dflt: number): number => (d === undefined ? dflt : (parseDuration(d) as number));
  const s = merged.scheduler ?? {};
  return {
    paths,
    get operatorName() {
      return merged.operatorName ?? sanitizeName(input.userName ?? env('USER') ?? '');
    },
    logLevel: merged.logLevel ?? DEFAULTS.logLevel,
    agent: { ...DEFAULTS.agent, ...merged.agent },
    redis: {
      url: merged.redis?.url,
      insecure: merged.redis?.insecure ?? false,
      timeoutMs: merged.redis?.timeoutMs ?? DEFAULTS.redis.timeoutMs,
      goneMs: merged.redis?.goneMs ?? DEFAULTS.redis.goneMs,
    },
    scheduler: {
      concurrency: s.concurrency ?? DEFAULTS.scheduler.concurrency,
      maxRuns: s.maxRuns ?? DEFAULTS.scheduler.maxRuns,
      metricsListen: s.metricsListen ?? DEFAULTS.scheduler.metricsListen,
      uiListen: s.uiListen ?? DEFAULTS.scheduler.uiListen,
      drainMs: ms(s.drain, DEFAULTS.scheduler.drainMs),
      lockMs: ms(s.lock, DEFAULTS.scheduler.lockMs),
      renewIntervalMs: ms(s.renewInterval, DEFAULTS.scheduler.renewIntervalMs),
      reapIntervalMs: ms(s.reapInterval, DEFAULTS.scheduler.reapIntervalMs),
    },
    providers: Object.fromEntries(
      Object.entries(PROVIDER_TOKEN_ENV).map(([name, tokenEnv]) => {
        const p = merged.providers?.[name as 'linode' | 'vultr'] ?? {};
        const token = env(tokenEnv);
        return [name, { url: p.url, region: p.region, type: p.type, image: p.image, envToken: token === undefined ? undefined : new Secret(token) }];
      }),
    ),
  };
}

/** A user name made into a valid identity name ("Jane Doe" -> "Jane-Doe"); 'operator' if nothing is left. */
export function sanitizeName(raw: string): string {
  const s = raw
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 63);
  return s === '' ? 'operator' : s;
}
