/**
 * gaxx-agent configuration: flags over `GAXX_AGENT_*` env over defaults, validated once (zod).
 * Pure: the caller passes argv and env; nothing here reads process state.
 *
 * Metrics are off unless `--metrics-listen` (or GAXX_AGENT_METRICS_LISTEN) is given: the
 * installer passes `0.0.0.0:9091`; an agent started by hand opens only its gRPC port.
 */
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { checkDuration, GaxxError, inside, isGaxxError, parseHostPort, parseSize, REQUEST_LIMITS, SIZE_HINT, SIZE_PATTERN } from '../proto/index.js';
import { GuardsSchema, type GuardsConfig } from './transport/guard-config.js';
import { TaskLimitsSchema, type TaskLimits } from './exec/limits.js';
import { BearerToken } from './auth/secrets.js';

/** A host and port to listen on. Port 0 picks a free port. */
export interface ListenAddress {
  host: string;
  port: number;
}

export interface AgentConfig {
  listen: ListenAddress;
  certsDir: string;
  dataDir: string;
  metricsListen: ListenAddress | undefined;
  profilingListen: ListenAddress | undefined;
  capacity: number;
  defaultTimeoutMs: number;
  /** How long a finished task's result is held for attach and replay (--task-retention). */
  taskRetentionMs: number;
  defaultOutputCapBytes: number;
  maxMessageBytes: number;
  shutdownGraceMs: number;
  environment: 'production' | 'development';
  /** Connection, call and rate limits, address blocking (issue 3). */
  guards: GuardsConfig;
  /** Per-task CPU, memory and process limits. */
  taskLimits: TaskLimits;
  /** The audit log; outside the data dir, so PutFile/GetFile cannot reach it. */
  auditLog: string;
  /** The agent's own state: the task journal, the newest revocation list seen, a pending renewal key; hidden from tasks, outside the data dir. */
  stateDir: string;
  /** Stat poll period of the cert dir watch (fs.watch does the rest). */
  certPollMs: number;
  /** Bearer token required on every call (GAXX_AGENT_TOKEN), when set; prints as [redacted]. */
  token: BearerToken | undefined;
  /** Absolute dirs tasks may write besides their work dir (--task-writable A:B); none by default. */
  taskWritable: string[];
  /**
   * Absolute dirs hidden from tasks besides the agent's own (--task-hidden A:B): each is an empty,
   * read-only dir inside the sandbox. The agent user's home is hidden too (taskLaunch).
   */
  taskHidden: string[];
  /** The bubblewrap binary tasks are sandboxed with. */
  bwrapPath: string;
  /** Sandboxes kept started ahead of tasks (--warm-sandboxes N; 0: every task starts its own). */
  warmSandboxes: number;
  /** Run tasks without a sandbox even in production (--unsafe-no-isolation); audited at start. */
  unsafeNoIsolation: boolean;
  /**
   * When this agent's fleet was created (--fleet-since, Unix ms by the controller's clock): signed
   * work signed before it is refused. Unset (a fleet-less agent): no such check.
   */
  fleetSinceUnixMs: number | undefined;
  /**
   * Free bytes the file systems of the data dir, state dir and audit log must keep for a task or
   * a PutFile to start (--disk-reserve; 0: no such check): room for the audit log and journal.
   */
  diskReserveBytes: number;
}

const FLAGS = {
  listen: 'LISTEN',
  certs: 'CERTS',
  'data-dir': 'DATA_DIR',
  'metrics-listen': 'METRICS_LISTEN',
  'profiling-listen': 'PROFILING_LISTEN',
  capacity: 'CAPACITY',
  'default-timeout': 'DEFAULT_TIMEOUT',
  'task-retention': 'TASK_RETENTION',
  'default-output-cap': 'DEFAULT_OUTPUT_CAP',
  'max-message-bytes': 'MAX_MESSAGE_BYTES',
  'shutdown-grace': 'SHUTDOWN_GRACE',
  guards: 'GUARDS',
  'task-limits': 'TASK_LIMITS',
  'audit-log': 'AUDIT_LOG',
  'state-dir': 'STATE_DIR',
  'cert-poll': 'CERT_POLL',
  bwrap: 'BWRAP',
  'warm-sandboxes': 'WARM_SANDBOXES',
  'task-writable': 'TASK_WRITABLE',
  'task-hidden': 'TASK_HIDDEN',
  'fleet-since': 'FLEET_SINCE',
  'disk-reserve': 'DISK_RESERVE',
} as const;
/** Boolean flags: present means on; their env form takes 1/true. */
const SWITCHES = { 'unsafe-no-isolation': 'UNSAFE_NO_ISOLATION' } as const;
type Flag = keyof typeof FLAGS;

const listenSchema = z.string().transform((s, ctx) => {
  try {
    return parseHostPort(s, { allowPortZero: true, what: 'listen address' });
  } catch (e) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: isGaxxError(e) ? e.message : 'expected ADDR:PORT' });
    return z.NEVER;
  }
});

/** A duration within the shared bounds (at most MAX_DURATION_MS: a longer timer would fire at once). */
const durationSchema = z.string().transform((s, ctx) => {
  const d = checkDuration(s);
  if ('ms' in d) return d.ms;
  ctx.addIssue({ code: z.ZodIssueCode.custom, message: d.problem });
  return z.NEVER;
});

/**
 * Unix milliseconds. A value before 1973 reads as seconds given for milliseconds, which would
 * let through nearly all work: refused.
 */
const unixMsSchema = z
  .string()
  .regex(/^[0-9]{1,16}$/, 'expected Unix milliseconds, e.g. 1767225600000')
  .transform(Number)
  .pipe(z.number().min(1e11, 'expected Unix milliseconds, not seconds').max(8.64e15, 'past the last time a Date can hold'));

const sizeSchema = z
  .string()
  .regex(SIZE_PATTERN, `expected ${SIZE_HINT}`)
  .transform((s) => parseSize(s) as number);

/** A JSON object flag validated by `inner` (its problems keep their dot-paths). */
const jsonOf = <T extends z.ZodTypeAny>(inner: T) =>
  z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'expected a JSON object' });
        return z.NEVER;
      }
    })
    .pipe(inner);

/** Where the task journal goes by default: beside the data dir, never inside it. */
export function defaultStateDir(dataDir: string): string {
  return join(dirname(dataDir), `${basename(dataDir)}-state`);
}

/** CONFIG_INVALID when `inner` is `outer` or below it (file RPCs serve the data dir). */
function refuseInside(what: string, inner: string, outer: string): void {
  if (within(outer, inner)) {
    throw new GaxxError('CONFIG_INVALID', `invalid agent config: ${what}: must be outside the data dir ${outer} (file RPCs can reach it)`, {
      details: { problems: [`${what}: inside the data dir`] },
    });
  }
}

/** Where the audit log goes by default: beside the data dir, never inside it. */
export function defaultAuditLog(dataDir: string): string {
  return join(dirname(dataDir), `${basename(dataDir)}-audit`, 'audit.log');
}

/** Whether `p` is `parent` or lies under it (lexically; a name like `..cfg` is a name). */
function within(parent: string, p: string): boolean {
  return inside(resolve(parent), resolve(p));
}

/**
 * CONFIG_INVALID when a dir tasks may write (--task-writable) holds one of the agent's own dirs
 * (data, certs, state, audit log), or lies in one: the sandbox hides the agent's dirs by their
 * paths, and a task may rename or replace what it can write, so a writable parent of a hidden
 * dir let a task move the cert dir aside, read the key and swap in a CA of its own, and a
 * writable data dir let a task plant files in the scratch dir another task was about to get.
 */
function refuseWritableOverOwn(writable: string[], own: Record<string, string>): void {
  const problems: string[] = [];
  for (const w of writable) {
    for (const [name, dir] of Object.entries(own)) {
      if (within(w, dir)) problems.push(`task-writable: ${w} holds the agent's ${name} dir ${dir}`);
      else if (within(dir, w)) problems.push(`task-writable: ${w} lies in the agent's ${name} dir ${dir}`);
    }
  }
  if (problems.length > 0) throw new GaxxError('CONFIG_INVALID', `invalid agent config: ${problems.join('; ')}`, { details: { problems } });
}

/**
 * CONFIG_INVALID when a dir to hide from tasks (--task-hidden) is not absolute, or holds the data
 * dir or a dir tasks may write: those would be hidden too, work dirs and all.
 */
function refuseHiddenOverTasks(hidden: string[], dataDir: string, writable: string[]): void {
  const problems: string[] = [];
  for (const h of hidden) {
    if (!isAbsolute(h)) problems.push(`task-hidden: ${h} is not an absolute path`);
    else if (within(h, dataDir)) problems.push(`task-hidden: ${h} holds the agent's data dir ${dataDir}, where tasks work`);
    else for (const w of writable) if (within(h, w)) problems.push(`task-hidden: ${h} holds ${w}, which tasks may write (--task-writable)`);
  }
  if (problems.length > 0) throw new GaxxError('CONFIG_INVALID', `invalid agent config: ${problems.join('; ')}`, { details: { problems } });
}

/**
 * CONFIG_INVALID when the audit log or the cert dir lies inside the data dir (file RPCs and tasks
 * could reach them), or the data dir inside the cert dir or the audit log's dir (hiding those
 * from tasks would hide the tasks' work dirs too).
 */
function refuseOverlaps(dataDir: string, certsDir: string, auditLog: string): void {
  const problems: string[] = [];
  if (within(dataDir, auditLog)) problems.push('audit-log: must be outside the data dir');
  if (within(dataDir, certsDir) || within(certsDir, dataDir)) problems.push('certs: the cert dir and the data dir must not contain each other');
  if (within(dirname(auditLog), dataDir)) problems.push("audit-log: the audit log's dir must not contain the data dir");
  if (problems.length > 0) throw new GaxxError('CONFIG_INVALID', `invalid agent config: ${problems.join('; ')}`, { details: { problems } });
}

const schema = z.object({
  listen: listenSchema.default('0.0.0.0:8088'),
  certs: z.string().min(1, 'required (--certs DIR or GAXX_AGENT_CERTS)'),
  'data-dir': z.string().min(1),
  'metrics-listen': listenSchema.optional(),
  'profiling-listen': listenSchema.optional(),
  capacity: z.coerce.number().int().min(1).max(10_000).default(16),
  // A default no request could ask for itself would outlast what the CLI and the queue allow.
  'default-timeout': durationSchema.default('1h').pipe(
    z
      .number()
      .min(1)
      .max(REQUEST_LIMITS.timeoutMs, `at most ${REQUEST_LIMITS.timeoutMs / 3_600_000}h, the longest timeout a request may give`),
  ),
  'task-retention': durationSchema.default('10m').pipe(z.number().min(1000)),
  'default-output-cap': sizeSchema.default('16MiB').pipe(
    z
      .number()
      .min(1)
      .max(REQUEST_LIMITS.outputCapBytes, `at most ${REQUEST_LIMITS.outputCapBytes / 1024 ** 2}MiB, the largest cap a request may give`),
  ),
  'max-message-bytes': sizeSchema.default('4MiB').pipe(
    z
      .number()
      .min(1024)
      .max(1024 ** 3),
  ),
  'shutdown-grace': durationSchema.default('10s'),
  guards: jsonOf(GuardsSchema).default('{}'),
  'task-limits': jsonOf(TaskLimitsSchema).default('{}'),
  'audit-log': z.string().min(1).optional(),
  'state-dir': z.string().min(1).optional(),
  'cert-poll': durationSchema.default('30s').pipe(z.number().min(100)),
  bwrap: z.string().min(1).default('/usr/bin/bwrap'),
  'warm-sandboxes': z.coerce.number().int().min(0).max(64).default(2),
  'task-writable': z.string().optional(),
  'task-hidden': z.string().optional(),
  'fleet-since': unixMsSchema.optional(),
  'disk-reserve': sizeSchema.default('32MiB'),
  env: z.enum(['production', 'development']).default('production'),
});

/**
 * The `GAXX_AGENT_*` variables of `env` that no setting of the agent reads (a misspelt
 * GAXX_AGENT_TASK_LIMIT would leave the defaults in force without a word): the agent logs them at
 * its start. GAXX_AGENT_PORT is the CLI's (the port of an address without one), which a local
 * fleet's agents inherit.
 */
export function ignoredAgentEnv(env: Record<string, string | undefined>): string[] {
  const read = new Set([...Object.values(FLAGS), ...Object.values(SWITCHES), 'TOKEN', 'PORT'].map((suffix) => `GAXX_AGENT_${suffix}`));
  return Object.keys(env)
    .filter((name) => name.startsWith('GAXX_AGENT_') && !read.has(name))
    .sort();
}

/** Parses flags and env into a validated config; USAGE for bad flags, CONFIG_INVALID for bad values. */
export function loadAgentConfig({ argv, env }: { argv: string[]; env: Record<string, string | undefined> }): AgentConfig {
  const options = {
    ...Object.fromEntries(Object.keys(FLAGS).map((f) => [f, { type: 'string' as const }])),
    ...Object.fromEntries(Object.keys(SWITCHES).map((f) => [f, { type: 'boolean' as const }])),
  };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new GaxxError('USAGE', (e as Error).message, { cause: e });
  }
  const raw: Record<string, string | undefined> = {};
  for (const [flag, suffix] of Object.entries(FLAGS) as Array<[Flag, string]>) {
    const v = values[flag] ?? env[`GAXX_AGENT_${suffix}`];
    if (typeof v === 'string') raw[flag] = v;
  }
  raw['data-dir'] ??= join(env.HOME || '/var/lib', '.local/state/gaxx-agent');
  if (env.GAXX_ENV) raw.env = env.GAXX_ENV;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new GaxxError('CONFIG_INVALID', `invalid agent config: ${problems.join('; ')}`, { details: { problems } });
  }
  const c = parsed.data;
  const token = BearerToken.fromValue(env.GAXX_AGENT_TOKEN);
  const unsafeEnv = env[`GAXX_AGENT_${SWITCHES['unsafe-no-isolation']}`];
  const auditLog = c['audit-log'] ?? defaultAuditLog(c['data-dir']);
  refuseOverlaps(c['data-dir'], c.certs, auditLog);
  const stateDir = c['state-dir'] ?? defaultStateDir(c['data-dir']);
  refuseInside('state-dir', stateDir, c['data-dir']);
  const taskWritable = (c['task-writable'] ?? '').split(':').filter((d) => d.startsWith('/'));
  refuseWritableOverOwn(taskWritable, { data: c['data-dir'], certs: c.certs, state: stateDir, 'audit log': dirname(auditLog) });
  const taskHidden = (c['task-hidden'] ?? '').split(':').filter((d) => d !== '');
  refuseHiddenOverTasks(taskHidden, c['data-dir'], taskWritable);
  return {
    listen: c.listen,
    certsDir: c.certs,
    dataDir: c['data-dir'],
    metricsListen: c['metrics-listen'],
    profilingListen: c['profiling-listen'],
    capacity: c.capacity,
    defaultTimeoutMs: c['default-timeout'],
    taskRetentionMs: c['task-retention'],
    defaultOutputCapBytes: c['default-output-cap'],
    maxMessageBytes: c['max-message-bytes'],
    shutdownGraceMs: c['shutdown-grace'],
    environment: c.env,
    guards: c.guards,
    taskLimits: c['task-limits'],
    auditLog,
    stateDir,
    certPollMs: c['cert-poll'],
    token,
    bwrapPath: c.bwrap,
    warmSandboxes: c['warm-sandboxes'],
    taskWritable,
    taskHidden,
    unsafeNoIsolation: values['unsafe-no-isolation'] === true || unsafeEnv === '1' || unsafeEnv === 'true',
    fleetSinceUnixMs: c['fleet-since'],
    diskReserveBytes: c['disk-reserve'],
  };
}
