/** An Exec request checked once (zod) and made into the spec a task runs by: defaults applied, its work dir placed. */
import { z } from 'zod';
import {
  argvBytes,
  ENV_NAME_PATTERN,
  envBytes,
  EXEC_TASK_ID_PATTERN,
  type ExecRequest__Output,
  GaxxError,
  isExecTaskId,
  isGaxxError,
  makeDirs,
  refuseLoaderEnv,
  REQUEST_LIMITS,
} from '../../proto/index.js';
import type { AgentConfig } from '../config.js';
import { workDirIn } from '../files/files.js';
import { setupError, type ExecSpec, type LaunchContext } from './exec.js';
import { inProcessRunner } from './launcher.js';
import type { Confinement } from './limits.js';
import { scratchDir, TASKS_DIR } from './task-dirs.js';

/** A task id: the pattern, and never `.` or `..` (the CLI's rule too, proto). */
export const taskIdSchema = z
  .string()
  .regex(EXEC_TASK_ID_PATTERN, '[A-Za-z0-9._-], 1..128 characters')
  // The CLI's rule too (proto): past the pattern, only `.` and `..` fail it.
  .refine(isExecTaskId, 'not . or ..');
const L = REQUEST_LIMITS;
const noNul = (s: string) => !s.includes('\0');
/** What an Exec request must be; the argv and env rules are proto/limits.ts requestProblems' too. */
export const execSchema = z.object({
  taskId: taskIdSchema,
  argv: z
    .array(
      z
        .string()
        .refine((s) => Buffer.byteLength(s) <= L.argBytes, `an argv entry is at most ${L.argBytes} bytes`)
        .refine(noNul, 'no NUL bytes'),
    )
    .min(1)
    .max(L.argvItems)
    .refine((a) => (a[0] ?? '') !== '', 'argv[0] must not be empty')
    .refine((a) => argvBytes(a) <= L.argvBytes, `argv totals at most ${L.argvBytes} bytes`),
  env: z
    .record(
      z.string().regex(ENV_NAME_PATTERN, 'env names are [A-Za-z_][A-Za-z0-9_]*, at most 128'),
      z
        .string()
        .refine((s) => Buffer.byteLength(s) <= L.envValueBytes, `an env value is at most ${L.envValueBytes} bytes`)
        .refine(noNul, 'no NUL bytes'),
    )
    .refine((e) => Object.keys(e).length <= L.envEntries, `at most ${L.envEntries} env vars`)
    .refine((e) => envBytes(e) <= L.envBytes, `env totals at most ${L.envBytes} bytes`),
  workDir: z.string().max(L.workDirChars),
  // Bounded by the agent's message size (--max-message-bytes), which the queue's inputs respect.
  stdin: z.instanceof(Buffer),
  timeoutMs: z.number().int().min(0).max(L.timeoutMs),
  outputCapBytes: z.number().int().min(0).max(L.outputCapBytes),
});

/** `value` as `schema` has it, or INVALID_ARGUMENT naming every problem. */
export function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${i.path.join('.') || '(request)'}: ${i.message}`);
  throw new GaxxError('INVALID_ARGUMENT', problems.join('; '), { details: { problems } });
}

/** Builds the spec for a validated request: defaults, and the (confined) work dir created. */
export function execSpec(req: ExecRequest__Output, config: AgentConfig, confine: Confinement | undefined, launch: LaunchContext | undefined): ExecSpec {
  const r = parse(execSchema, req);
  refuseLoaderEnv(r.env);
  if (r.workDir && launch?.sandbox.kind === 'bwrap' && !launch.sandbox.bindFd)
    throw new GaxxError(
      'FAILED_PRECONDITION',
      `this agent's bubblewrap cannot bind a work dir by descriptor (0.8 or later can): tasks here get a scratch work dir only`,
    );
  const work = r.workDir ? workDirIn(config.dataDir, r.workDir) : { path: scratchDir(config.dataDir, r.taskId), rel: `${TASKS_DIR}/${r.taskId}` };
  // The launcher makes the dir off this event loop (a sandboxed start makes it in its walk from
  // the data dir, launcher-protocol.ts); in-process without a sandbox, make it here: one that
  // cannot be made is the agent's failure, as the launcher's is (setupError).
  if ((!launch || launch.runner === inProcessRunner) && launch?.sandbox.kind !== 'bwrap') {
    try {
      makeDirs(work.path, { mode: 0o700 });
    } catch (e) {
      const errno = (isGaxxError(e) ? e.details?.errno : undefined) ?? (e as NodeJS.ErrnoException).code ?? 'EIO';
      throw setupError(
        { taskId: r.taskId, scratch: !r.workDir },
        { stage: 'work dir', errno: String(errno), message: `work dir ${work.path}: ${(e as Error).message}`, path: work.path },
      );
    }
  }
  return {
    launch,
    taskId: r.taskId,
    argv: r.argv,
    env: r.env,
    cwd: work.path,
    workRel: work.rel,
    scratch: !r.workDir,
    stdin: r.stdin,
    timeoutMs: r.timeoutMs || config.defaultTimeoutMs,
    outputCapBytes: r.outputCapBytes || config.defaultOutputCapBytes,
    confine,
  };
}
