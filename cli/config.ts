/**
 * The CLI's configuration, loaded once in main.ts by one pure function. Precedence:
 * defaults < `<configDir>/config.json` < `GAXX_*` env < flags. Nothing below main.ts reads
 * process.env; commands get the resulting GaxxConfig.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { GaxxError } from '../proto/index.js';
import { resolvePaths, type GaxxPaths } from './paths.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** The config file: every key optional, unknown keys refused (a typo should not pass silently). */
export const ConfigFileSchema = z
  .object({
    operatorName: z.string().regex(NAME, 'must be 1-63 characters of [A-Za-z0-9._-]'),
    logLevel: z.enum(LOG_LEVELS),
    agent: z
      .object({
        port: z.number().int().min(1).max(65535),
        deadlineMs: z.number().int().positive(),
        connectTimeoutMs: z.number().int().positive(),
        /** The agents' bearer token; prefer GAXX_AGENT_TOKEN in the environment. */
        token: z.string().min(1),
      })
      .strict()
      .partial(),
    redis: z.object({ url: z.string().min(1) }).strict().partial(),
  })
  .strict()
  .partial();
type ConfigLayer = z.infer<typeof ConfigFileSchema>;

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
  };
}

const DEFAULTS = {
  logLevel: 'info' as LogLevel,
  agent: { port: 8088, deadlineMs: 10_000, connectTimeoutMs: 5_000 },
};

/** One setting reachable from the environment and (optionally) a global flag. */
interface Setting {
  /** Dot-path in the config file. */
  path: string;
  env: string;
  flag?: string;
  kind: 'string' | 'int';
  help: string;
}

/** Env vars and global flags; one row per setting. */
export const SETTINGS: readonly Setting[] = [
  { path: 'operatorName', env: 'GAXX_OPERATOR_NAME', kind: 'string', help: 'default operator name' },
  { path: 'logLevel', env: 'GAXX_LOG_LEVEL', flag: 'log-level', kind: 'string', help: `log level (${LOG_LEVELS.join('|')})` },
  { path: 'agent.port', env: 'GAXX_AGENT_PORT', kind: 'int', help: 'agent port when an address has none (8088)' },
  { path: 'agent.deadlineMs', env: 'GAXX_DEADLINE_MS', flag: 'deadline-ms', kind: 'int', help: 'deadline of agent calls in ms (10000)' },
  { path: 'agent.connectTimeoutMs', env: 'GAXX_CONNECT_TIMEOUT_MS', flag: 'connect-timeout-ms', kind: 'int', help: 'agent connect timeout in ms (5000)' },
  { path: 'agent.token', env: 'GAXX_AGENT_TOKEN', kind: 'string', help: "the agents' bearer token, when they require one (env or config file only)" },
  { path: 'redis.url', env: 'GAXX_REDIS_URL', flag: 'redis-url', kind: 'string', help: 'Redis URL (default: an embedded redis-server in the state dir)' },
];

/** A global option: accepted by every command, documented in `gaxx --help`. */
export interface GlobalFlag {
  type: 'string';
  help: string;
  valueName: string;
}

/** Global flags, merged into every command's options by main.ts. */
export const CONFIG_FLAGS: Record<string, GlobalFlag> = {
  home: { type: 'string', valueName: 'DIR', help: 'relocate all config, keys and state to DIR (as GAXX_HOME)' },
  ...Object.fromEntries(
    SETTINGS.filter((s) => s.flag).map((s) => [s.flag as string, { type: 'string' as const, valueName: s.kind === 'int' ? 'N' : 'VALUE', help: s.help }]),
  ),
};

/** Reads a file's text, or undefined when it does not exist. */
export type ReadFile = (path: string) => string | undefined;

export interface LoadConfigInput {
  /** The command line (global flags are picked out of it; `--` ends them). */
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  readFile: ReadFile;
  /** Home directory for the XDG defaults (default: env.HOME). */
  homeDir?: string;
  /** OS user name, for the default operator name. */
  userName?: string;
  /** Base for a relative GAXX_HOME (default '/'). */
  cwd?: string;
}

/** Loads the configuration. CONFIG_INVALID (file, env) or USAGE (flags) name the dot-path. */
export function loadConfig(input: LoadConfigInput): GaxxConfig {
  const flags = parseArgs({
    args: [...input.argv],
    options: Object.fromEntries(Object.keys(CONFIG_FLAGS).map((k) => [k, { type: 'string' as const }])),
    strict: false,
    allowPositionals: true,
  }).values;
  const flag = (name: string): string | undefined => {
    const v = flags[name];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const env = (name: string): string | undefined => (input.env[name] ? input.env[name] : undefined);
  const home = flag('home') ?? env('GAXX_HOME');
  const paths = resolvePaths({
    home: home === undefined ? undefined : resolve(input.cwd ?? '/', home),
    xdgConfigHome: env('XDG_CONFIG_HOME'),
    xdgStateHome: env('XDG_STATE_HOME'),
    homeDir: input.homeDir ?? env('HOME') ?? '/',
  });
  const fileLayer = readConfigFile(paths.configFile, input.readFile);
  const envLayer = layerFrom((s) => env(s.env), (s) => s.env, 'CONFIG_INVALID', 'environment');
  const flagLayer = layerFrom((s) => (s.flag ? flag(s.flag) : undefined), (s) => `--${s.flag}`, 'USAGE', 'flags');
  const merged = [fileLayer, envLayer, flagLayer].reduce<ConfigLayer>((acc, l) => deepMerge(acc, l), {});
  return {
    paths,
    operatorName: merged.operatorName ?? sanitizeName(input.userName ?? env('USER') ?? ''),
    logLevel: merged.logLevel ?? DEFAULTS.logLevel,
    agent: { ...DEFAULTS.agent, ...merged.agent },
    redis: { url: merged.redis?.url },
  };
}

/** The default config file reader for main.ts. */
export const readFileIfExists: ReadFile = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new GaxxError('CONFIG_INVALID', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
};

/** A user name made into a valid identity name ("Jane Doe" -> "Jane-Doe"); 'operator' if nothing is left. */
export function sanitizeName(raw: string): string {
  const s = raw.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63);
  return s === '' ? 'operator' : s;
}

function readConfigFile(path: string, readFile: ReadFile): ConfigLayer {
  const text = readFile(path);
  if (text === undefined) return {};
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new GaxxError('CONFIG_INVALID', `${path}: not valid JSON (${(e as Error).message})`, { cause: e, details: { issues: [{ path: '', message: 'invalid JSON' }] } });
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
    setPath(obj, s.path, s.kind === 'int' && /^\d+$/.test(raw) ? Number(raw) : raw);
    labels.set(s.path, label(s));
  }
  return validateLayer(obj, code, source, (p) => `${labels.get(p) ?? p} (${p})`);
}

function validateLayer(value: unknown, code: 'CONFIG_INVALID' | 'USAGE', source: string, name: (dotPath: string) => string): ConfigLayer {
  const r = ConfigFileSchema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => {
    const keys = i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k].join('.')) : [i.path.join('.')];
    return keys.map((p) => ({ path: p, message: i.code === 'unrecognized_keys' ? 'unknown key' : i.message }));
  }).flat();
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
