/**
 * The layers of the configuration (config.ts): the config file's, the environment's and the
 * flags' settings, each checked against one schema (every key optional, unknown keys refused)
 * before they are merged.
 */
import type { z } from 'zod';
import { checkDuration, GaxxError, parseHostPort } from '../proto/index.js';
import { LOG_LEVELS, SETTINGS, type ReadFile, type Setting } from './settings.js';
import { zod } from './zod.cjs';

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
        .object({ url: z.string().min(1), insecure: z.boolean(), timeoutMs: int('redis.timeoutMs'), goneMs: int('redis.goneMs') })
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

/** One layer of settings, as the schema gives it. */
export type ConfigLayer = z.infer<ReturnType<typeof buildConfigFileSchema>>;

/** The config file at `path` as a layer ({} when there is none); CONFIG_INVALID names what is wrong. */
export function readConfigFile(path: string, readFile: ReadFile): ConfigLayer {
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

/**
 * A layer of the settings `get` gives a raw value for (the environment's, the flags'), each
 * named by `label` when it is wrong (`code`: CONFIG_INVALID or USAGE).
 */
export function layerFrom(
  get: (s: Setting) => string | undefined,
  label: (s: Setting) => string,
  code: 'CONFIG_INVALID' | 'USAGE',
  source: string,
): ConfigLayer {
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

/**
 * What a schema issue says, in the words of the config's other messages: a value of the wrong
 * JSON type (`"drain": 10`) is named with what it should be, not zod's "Expected string, received number".
 */
function issueMessage(i: { code: string; message: string; expected?: unknown; received?: unknown; path: (string | number)[] }): string {
  // A schema's own message (an int setting's range) stays.
  if (i.code !== 'invalid_type' || i.received === 'undefined' || !i.message.startsWith('Expected ')) return i.message;
  const path = i.path.join('.');
  const setting = SETTINGS.find((s) => s.path === path);
  const example = setting?.kind === 'duration' ? ', e.g. "10s"' : '';
  return `must be a JSON ${String(i.expected)}${example}, not a ${String(i.received)}`;
}

/** `value` checked against the config schema, as a layer; `code` with every issue named by `name` when it fails. */
function validateLayer(value: unknown, code: 'CONFIG_INVALID' | 'USAGE', source: string, name: (dotPath: string) => string): ConfigLayer {
  // Nothing to check (no file, no setting in the environment or the flags): zod stays unloaded.
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0) return {};
  configFileSchema ??= buildConfigFileSchema(zod());
  const r = configFileSchema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues
    .map((i) => {
      const keys = i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k].join('.')) : [i.path.join('.')];
      return keys.map((p) => ({ path: p, message: i.code === 'unrecognized_keys' ? 'unknown key' : issueMessage(i) }));
    })
    .flat();
  const text = issues.map((i) => `${name(i.path) || '(root)'}: ${i.message}`).join('; ');
  throw new GaxxError(code, `${source}: ${text}`, { details: { issues } });
}

/** Sets `value` at `dotPath` in `obj`, making the objects on the way. */
function setPath(obj: Record<string, unknown>, dotPath: string, value: unknown): void {
  const keys = dotPath.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>;
  cur[keys[keys.length - 1] as string] = value;
}

/** `b` over `a`, objects merged key by key (a layer over the ones before it). */
export function deepMerge<T extends Record<string, unknown>>(a: T, b: T): T {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
    out[k] = isObj(prev) && isObj(v) ? deepMerge(prev, v) : v;
  }
  return out as T;
}
