/**
 * The CLI's settings table and global flags, as plain data, and the config file reader: what
 * `gaxx --help` and main.ts need, without the validation in config.ts (zod), so that
 * `gaxx --version` and `gaxx --help` load next to nothing.
 */
import { readFileSync } from 'node:fs';
import { GaxxError } from '../proto/index.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One setting reachable from the environment and (optionally) a global flag. */
export interface Setting {
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

/** The default config file reader for main.ts. */
export const readFileIfExists: ReadFile = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new GaxxError('CONFIG_INVALID', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
};

