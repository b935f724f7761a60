/**
 * The task model: what one queued job asks an agent to do, validated once at enqueue (and again
 * when a worker reads it back from Redis, which is external input too). Bad job data never
 * reaches an agent: it is refused with INVALID_ARGUMENT and the dot-path of every problem.
 */
import { z } from 'zod';
import { argvBytes, envBytes, ENV_NAME_PATTERN, GaxxError, parseHostPort, REQUEST_LIMITS, workDirProblems } from '../../proto/index.js';
import { SignedBlockSchema } from './sign.js';

/** Run ids: no '-' (the job-id separator) and no ':' (BullMQ's key separator). */
export const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_.]{0,39}$/;
/** Task ids: the agent's task-id alphabet, short enough that `<runId>-<taskId>.rNN` fits 128. */
export const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;
const FLEET = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** The queue's limits: the shared request limits (proto/limits.ts) plus the queue's own. */
export const LIMITS = {
  ...REQUEST_LIMITS,
  inputBytes: 8 * 1024 * 1024,
  tasksPerRun: 100_000,
  agentsPerRun: 10_000,
  attempts: 20,
} as const;

/** Default output cap for queued tasks: the worker holds a task's output until it completes. */
export const DEFAULT_OUTPUT_CAP_BYTES = 1024 * 1024;

/** host:port, [v6]:port, or name:port. */
function isHostPort(s: string): boolean {
  try {
    parseHostPort(s);
    return true;
  } catch {
    return false;
  }
}

const base64Max = (bytes: number): z.ZodString =>
  z
    .string()
    .base64()
    .max(Math.ceil(bytes / 3) * 4);

const RetrySchema = z
  .object({
    /** Dispatch attempts for infrastructure failures (unreachable agent, agent died mid-task). */
    attempts: z.number().int().min(1).max(LIMITS.attempts).default(5),
    /** Also run again when the command exits non-zero (up to `attempts` runs). Off by default. */
    retryOnFailure: z.boolean().default(false),
    /** First backoff delay; doubled per attempt with equal jitter, capped at 30 s (dispatch/retry-policy.ts). */
    backoffMs: z.number().int().min(10).max(60_000).default(500),
  })
  .strict();

const EnvSchema = z
  .record(
    z.string().regex(ENV_NAME_PATTERN, 'env names are [A-Za-z_][A-Za-z0-9_]*, at most 128'),
    z.string().refine((v) => Buffer.byteLength(v) <= LIMITS.envValueBytes, `an env value is at most ${LIMITS.envValueBytes} bytes`),
  )
  .refine((env) => Object.keys(env).length <= LIMITS.envEntries, `at most ${LIMITS.envEntries} env entries`)
  .refine((env) => envBytes(env) <= LIMITS.envBytes, `env is larger than ${LIMITS.envBytes} bytes`);

const TargetSchema = z.union([z.object({ host: z.string().min(1).max(260) }).strict(), z.object({ any: z.literal(true) }).strict()]);

const TaskFields = z.object({
  taskId: z.string().regex(TASK_ID, 'task ids are 1-80 characters of [A-Za-z0-9._-]'),
  /** A registered fleet; or, fleet-less, `agents` lists the agent addresses. */
  fleet: z.string().regex(FLEET, 'fleet names are 1-63 characters of [A-Za-z0-9._-]').optional(),
  agents: z.array(z.string().refine(isHostPort, 'agent addresses are host:port ([v6]:port)')).min(1).max(LIMITS.agentsPerRun).optional(),
  target: TargetSchema,
  argv: z
    .array(z.string().refine((s) => Buffer.byteLength(s) <= LIMITS.argBytes, `an argv entry is at most ${LIMITS.argBytes} bytes`))
    .min(1, 'argv needs at least the command')
    .max(LIMITS.argvItems)
    .refine((a) => (a[0] ?? '') !== '', 'argv[0] is empty')
    .refine((a) => argvBytes(a) <= LIMITS.argvBytes, `argv totals at most ${LIMITS.argvBytes} bytes`),
  env: EnvSchema.default({}),
  /** Bytes for the command's stdin, base64. */
  stdin: base64Max(LIMITS.stdinBytes).optional(),
  /** Name of a run input (stored once per run) to send as stdin instead. */
  input: z.string().regex(TASK_ID, 'input names are [A-Za-z0-9._-]').optional(),
  timeoutMs: z.number().int().min(1).max(LIMITS.timeoutMs).optional(),
  /** A dir under the agent's data dir to run in (kept after the task); absent: a fresh scratch dir. */
  workDir: z
    .string()
    .min(1)
    .superRefine((w, ctx) => workDirProblems(w).forEach((message) => ctx.addIssue({ code: 'custom', message })))
    .optional(),
  outputCapBytes: z.number().int().min(1).max(LIMITS.outputCapBytes).default(DEFAULT_OUTPUT_CAP_BYTES),
  retry: RetrySchema.default({}),
});

function taskRules(t: z.output<typeof TaskFields>, ctx: z.RefinementCtx): void {
  if ((t.fleet === undefined) === (t.agents === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['fleet'], message: 'give exactly one of fleet or agents' });
  }
  if (t.agents && 'host' in t.target && !t.agents.includes(t.target.host)) {
    ctx.addIssue({ code: 'custom', path: ['target', 'host'], message: 'a pinned host must be one of agents' });
  }
  if (t.stdin !== undefined && t.input !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['input'], message: 'give stdin or input, not both' });
  }
}

/** One task as a caller submits it inside a run (the run supplies runId). */
export const TaskInputSchema = TaskFields.strict().superRefine(taskRules);

export type TaskInput = z.input<typeof TaskInputSchema>;

/** A run as submitted: its tasks and optional shared inputs (base64, stored once). */
export const RunSpecSchema = z
  .object({
    runId: z.string().regex(RUN_ID, 'run ids are 1-40 characters of [A-Za-z0-9_.]'),
    tasks: z.array(TaskInputSchema).min(1).max(LIMITS.tasksPerRun),
    inputs: z.record(z.string().regex(TASK_ID), base64Max(LIMITS.inputBytes)).optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    const seen = new Set<string>();
    r.tasks.forEach((t, i) => {
      if (seen.has(t.taskId)) ctx.addIssue({ code: 'custom', path: ['tasks', i, 'taskId'], message: `duplicate task id '${t.taskId}'` });
      seen.add(t.taskId);
      if (t.input !== undefined && !(r.inputs && t.input in r.inputs)) {
        ctx.addIssue({ code: 'custom', path: ['tasks', i, 'input'], message: `no run input named '${t.input}'` });
      }
    });
  });

export type RunSpecInput = z.input<typeof RunSpecSchema>;
export type RunSpec = z.output<typeof RunSpecSchema>;

/** The most agents a job's dispatch state names in each of its lists (the newest are kept). */
export const DISPATCH_HISTORY = 32;

/** What a queued job carries: the task plus its run id, and the worker's dispatch state. */
export const TaskSpecSchema = TaskFields.extend({
  runId: z.string().regex(RUN_ID),
  /**
   * Set by the worker before each dispatch, so a re-dispatch after a crash goes to the same agent,
   * and a worker that takes the job over knows where it ran before (its result names them).
   */
  dispatch: z
    .object({
      placedOn: z.string().optional(),
      round: z.number().int().min(0).default(0),
      /** Agents an execution of the task was seen starting on (TaskResult.startedOn), the last DISPATCH_HISTORY. */
      startedOn: z.array(z.string().max(1024)).max(DISPATCH_HISTORY).optional(),
      /** Agents the current round may have started on before `placedOn` (it moved from an agent that stayed away). */
      mayHaveRunOn: z.array(z.string().max(1024)).max(DISPATCH_HISTORY).optional(),
      /**
       * The agent the current round's last Exec went to, its journal identity ('' not known yet:
       * learned from its Started) and when it went (ms epoch): a worker that takes the job over
       * tells a restart of that agent from a new agent at its address.
       */
      sentTo: z
        .object({ address: z.string().max(1024), journal: z.string().max(64), at: z.number().int().min(0).optional() })
        .strict()
        .optional(),
      /**
       * The bounded waits under way (ms epoch of their start), so that a worker that takes the job
       * over (the first died, or drained) ends them when they were due, rather than begin them
       * again: `gone`, the agent the task may run on and went away (agentGoneMs); `busy`, the
       * first refusal of work (busyWaitMs); `breaker`, every usable agent's breaker open
       * (agentGoneMs); `moved`, why the task left an agent that stayed away (that wait is spent).
       */
      waits: z
        .object({
          gone: z
            .object({ address: z.string().max(1024), since: z.number().int().min(0) })
            .strict()
            .optional(),
          busy: z.number().int().min(0).optional(),
          breaker: z.number().int().min(0).optional(),
          moved: z.string().max(8192).optional(),
        })
        .strict()
        .optional(),
    })
    .strict()
    .optional(),
  /** The submitting operator's signature (sign.ts); optional here so a missing one is UNSIGNED_TASK, not a parse error. */
  signed: SignedBlockSchema.optional(),
})
  .strict()
  .superRefine(taskRules);

export type TaskSpec = z.output<typeof TaskSpecSchema>;

/** Turns zod issues into one INVALID_ARGUMENT naming every dot-path. */
export function invalidArgument(error: z.ZodError, prefix: string[] = []): GaxxError {
  const issues = error.issues.map((i) => ({ path: [...prefix, ...i.path.map(String)].join('.'), message: i.message }));
  const first = issues[0];
  const more = issues.length > 1 ? ` (+${issues.length - 1} more)` : '';
  return new GaxxError('INVALID_ARGUMENT', `invalid task data: ${first?.path || '(root)'}: ${first?.message}${more}`, { details: { issues } });
}

/** Validates a run; INVALID_ARGUMENT with dot-paths on any problem. */
export function parseRunSpec(data: unknown): RunSpec {
  const r = RunSpecSchema.safeParse(data);
  if (!r.success) throw invalidArgument(r.error);
  return r.data;
}

/** Validates a job's data as read back from Redis. */
export function parseTaskSpec(data: unknown): TaskSpec {
  const r = TaskSpecSchema.safeParse(data);
  if (!r.success) throw invalidArgument(r.error);
  return r.data;
}

/** The BullMQ job id of a task: `<runId>-<taskId>`. */
export function jobIdFor(runId: string, taskId: string): string {
  const id = `${runId}-${taskId}`;
  assertJobId(id);
  return id;
}

/** BullMQ job ids may not contain ':' nor be all digits (those are its own counter ids). */
export function assertJobId(id: string): void {
  if (id.length === 0 || id.length > 121 || id.includes(':') || /^\d+$/.test(id) || !/^[A-Za-z0-9._-]+$/.test(id)) {
    throw new GaxxError('INVALID_ARGUMENT', `job id '${id}' is not valid (no ':', not all digits, [A-Za-z0-9._-], at most 121 characters)`);
  }
}

/** A fresh run id: time-ordered, unique enough across schedulers. */
export function newRunId(now = Date.now(), rand = Math.random): string {
  return `r${now.toString(36)}${Math.floor(rand() * 36 ** 6)
    .toString(36)
    .padStart(6, '0')}`;
}
