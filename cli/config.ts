/**
 * The installation's configuration, for every process gaxx starts on the controller (the CLI's
 * commands and the scheduler daemon, which is `gaxx scheduler`): paths, defaults (one table,
 * DEFAULTS) and precedence, loaded once in main.ts by one pure function. Precedence:
 * defaults < `<configDir>/config.json` < `GAXX_*` env < flags. Nothing below main.ts reads
 * process.env; commands get the resulting GaxxConfig.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { z } from 'zod';
import { checkDuration, GaxxError, parseDuration, parseHostPort } from '../proto/index.js';
import { resolvePaths, type GaxxPaths } from './paths.js';
import { Secret } from './secrets.js';
import { zod } from './zod.cjs';
import { CONFIG_FLAGS, LOG_LEVELS, SETTINGS, type LogLevel, type ReadFile, type Setting } from './settings.js';

export { readFileIfExists } from './settings.js';
export { CONFIG_FLAGS, LOG_LEVELS, SETTINGS, scopedFlags, type GlobalFlag, type LogLevel, type Setting } from './settings.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const settingAt = (path: string): Setting => SETTINGS.find((s) => s.path === path) as Setting;

/**
 * The config file's schema: every key optional, unknown keys refused (a typo should not pass
 * silently). The same for the environment's and the flags' settings. Built on first use (zod.cjs
 * says why): a command given none of them never sets zod up.
 */
function buildConfigFileSchema({ z }: ReturnType<typeof zod>) {
  /** An int setting within its range (SETTINGS), one message for every way to miss it. */
  const int = (path: string) => {
    const [min, max] = settingAt(path).range as readonly [number, number];
    const message = `must be a whole number from ${min} to ${max}`;
    return z.number({ invalid_type_error: message }).int(message).min(min, message).max(max, message);
  };
  /** A duration setting: kept as text, checked with the one duration rule (at most MAX_DURATION_MS). */
  const duration = (path: string) =>
    z.string().superRefine((text, ctx) => {
      const d = checkDuration(text, { minMs: settingAt(path).minMs ?? 0 });
      if ('problem' in d) ctx.addIssue({ code: z.ZodIssueCode.custom, message: d.problem });
    });
  /** host:port (port 0: any free port), or '' for off. */
  const listenAddress = z.string().refine((s) => {
    if (s === '') return true;
    try {
      parseHostPort(s, { allowPortZero: true });
      return true;
    } catch {
      return false;
    }
  }, 'must be HOST:PORT (IPv6 as [ADDR]:PORT), or empty for off');

  /** One cloud provider's settings in the config file (never its token: that lives in secrets.env). */
  const ProviderFileSchema = z
    .object({
      url: z.string().url(),
      region: z.string().min(1),
      type: z.string().min(1),
      image: z.string().min(1),
    })
    .strict()
    .partial();

  return z
    .object({
      operatorName: z.string().regex(NAME, 'must be 1-63 characters of [A-Za-z0-9._-]'),
      // Said plainly, with every value allowed (zod's own text lists them quoted and piped).
      logLevel: z.enum(LOG_LEVELS, {
        errorMap: (_, ctx) => ({
          message: `${typeof ctx.data === 'string' ? `'${ctx.data}'` : JSON.stringify(ctx.data)} is not a log level; use one of ${LOG_LEVELS.join(', ')}`,
        }),
      }),
      agent: z
        .object({
          port: int('agent.port'),
          deadlineMs: int('agent.deadlineMs'),
          connectTimeoutMs: int('agent.connectTimeoutMs'),
          /** The agents' bearer token; prefer GAXX_AGENT_TOKEN in the environment. */
          token: z.string().min(1),
        })
        .strict()
        .partial(),
      redis: z
        .object({ url: z.string().min(1), insecure: z.boolean() })
        .strict()
        .partial(),
      /** Relocates the state dir alone (queue, embedded Redis, scheduler certificate, fleets). */
      stateDir: z.string().startsWith('/', 'must be an absolute path'),
      scheduler: z
        .object({
          concurrency: int('scheduler.concurrency'),
          maxRuns: int('scheduler.maxRuns'),
          metricsListen: listenAddress,
          uiListen: listenAddress,
          drain: duration('scheduler.drain'),
          lock: duration('scheduler.lock'),
          renewInterval: duration('scheduler.renewInterval'),
          reapInterval: duration('scheduler.reapInterval'),
        })
        .strict()
        .partial(),
      providers: z
        .object({
          linode: ProviderFileSchema,
          vultr: ProviderFileSchema,
        })
        .strict()
        .partial(),
    })
    .strict()
    .partial();
}

let configFileSchema: ReturnType<typeof buildConfigFileSchema> | undefined;

type ConfigLayer = z.infer<ReturnType<typeof buildConfigFileSchema>>;

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

/** Every default of the installation, in one place. */
/**
 * What the config gives every agent client a command makes (AgentClient, agentConnector): the
 * unary call deadline, the connect timeout, the agents' bearer token.
 */
export function agentClientOptions(config: Pick<GaxxConfig, 'agent'>): { deadlineMs: number; connectTimeoutMs: number; token: string | undefined } {
  return { deadlineMs: config.agent.deadlineMs, connectTimeoutMs: config.agent.connectTimeoutMs, token: config.agent.token };
}

export const DEFAULTS = {
  logLevel: 'info' as LogLevel,
  agent: { port: 8088, deadlineMs: 10_000, connectTimeoutMs: 5_000 },
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
      throw new GaxxError('USAGE', `--${name} needs a value; it was given as '' (see 'gaxx --help')`);
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
    redis: { url: merged.redis?.url, insecure: merged.redis?.insecure ?? false },
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

function readConfigFile(path: string, readFile: ReadFile): ConfigLayer {
  const text = readFile(path);
  if (text === undefined) return {};
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new GaxxError('CONFIG_INVALID', `${path}: not valid JSON (${(e as Error).message})`, {
      cause: e,
      details: { issues: [{ path: '', message: 'invalid JSON' }] },
    });
  }
  return validateLayer(json, 'CONFIG_INVALID', path, (p) => p);
}

function layerFrom(get: (s: Setting) => string | undefined, label: (s: Setting) => string, code: 'CONFIG_INVALID' | 'USAGE', source: string): ConfigLayer {
  const obj: Record<string, unknown> = {};
  const labels = new Map<string, string>();
  for (const s of SETTINGS) {
    const raw = get(s);
    if (raw === undefined) continue;
    // Leave a non-integer as a string so the schema reports it with the setting's path.
    setPath(obj, s.path, settingValue(s, raw));
    labels.set(s.path, label(s));
  }
  return validateLayer(obj, code, source, (p) => `${labels.get(p) ?? p} (${p})`);
}

/** A raw env/flag value as its setting's type; left a string when malformed, so the schema names it. */
function settingValue(s: Setting, raw: string): unknown {
  if (s.kind === 'int' && /^\d+$/.test(raw)) return Number(raw);
  if (s.kind === 'bool' && /^(1|true|yes)$/i.test(raw)) return true;
  if (s.kind === 'bool' && /^(0|false|no)$/i.test(raw)) return false;
  return raw;
}

function validateLayer(value: unknown, code: 'CONFIG_INVALID' | 'USAGE', source: string, name: (dotPath: string) => string): ConfigLayer {
  // Nothing to check (no file, no setting in the environment or the flags): zod stays unloaded.
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0) return {};
  configFileSchema ??= buildConfigFileSchema(zod());
  const r = configFileSchema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues
    .map((i) => {
      const keys = i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k].join('.')) : [i.path.join('.')];
      return keys.map((p) => ({ path: p, message: i.code === 'unrecognized_keys' ? 'unknown key' : i.message }));
    })
    .flat();
  const text = issues.map((i) => `${name(i.path) || '(root)'}: ${i.message}`).join('; ');
  throw new GaxxError(code, `${source}: ${text}`, { details: { issues } });
}

function setPath(obj: Record<string, unknown>, dotPath: string, value: unknown): void {
  const keys = dotPath.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>;
  cur[keys[keys.length - 1] as string] = value;
}

function deepMerge<T extends Record<string, unknown>>(a: T, b: T): T {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
    out[k] = isObj(prev) && isObj(v) ? deepMerge(prev, v) : v;
  }
  return out as T;
}
