/**
 * Reading a task result back from Redis. The queue is not a trust root: whoever can write to
 * Redis can add a result entry to a run's stream or its done hash without any gaxx key, so a
 * result read back is external input, checked once here by every reader (the followers, the
 * waits, `runs show`, the dashboard). A result that is not valid JSON of a TaskResult, or that
 * names another run or another task than its entry, is refused with the reason (dot-paths);
 * readers skip it and say so (`onIgnored`), never fail on it.
 */
import { z } from 'zod';
import { printable } from '../../proto/index.js';
import { TASK_OUTCOMES, type TaskResult } from './results.js';
import { RUN_ID, TASK_ID } from './task.js';

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const text = (max: number): z.ZodString => z.string().max(max);

/** A TaskResult as a worker publishes it (results.ts); fields it does not know are dropped. */
export const TaskResultSchema = z.object({
  runId: z.string().regex(RUN_ID, 'run ids are 1-40 characters of [A-Za-z0-9_.]'),
  taskId: z.string().regex(TASK_ID, 'task ids are 1-80 characters of [A-Za-z0-9._-]'),
  host: text(260),
  outcome: z.enum(TASK_OUTCOMES),
  exitCode: z
    .number()
    .int()
    .min(-(2 ** 31))
    .max(2 ** 32)
    .nullable(),
  signal: text(64).nullable(),
  reason: text(256),
  error: text(64 * 1024).optional(),
  durationMs: z.number().min(0).max(Number.MAX_SAFE_INTEGER),
  stdoutBytes: count,
  stderrBytes: count,
  truncated: z.boolean(),
  // Absent in results published before the field existed.
  outputCapped: z.boolean().default(false),
  // Absent in results published before the field existed.
  outputLost: z.boolean().default(false),
  attempts: count,
  startedOn: z.array(text(260)).max(1000),
  mayHaveRepeated: z.boolean(),
  attached: z.boolean(),
  replayed: z.boolean(),
  finishedAt: text(64),
}) satisfies z.ZodType<TaskResult, z.ZodTypeDef, unknown>;

/** A stored result, or why it is not one of the run's. */
export type ReadResult = { ok: true; result: TaskResult } | { ok: false; why: string };

/** Every problem of a zod error as `path: message`, joined; printable (a path or message may quote what was read). */
export function problems(error: z.ZodError): string {
  return printable(error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; '));
}

/**
 * Parses a result entry's JSON as read from Redis and checks it belongs where it was read: to
 * run `runId` and, when given, to task `taskId` (the stream entry's `task` field, or the done
 * hash's field).
 */
export function readResult(raw: string | Buffer | undefined, where: { runId: string; taskId?: string }): ReadResult {
  let json: unknown;
  try {
    json = JSON.parse(raw === undefined ? '' : raw.toString());
  } catch {
    return { ok: false, why: 'not JSON' };
  }
  const r = TaskResultSchema.safeParse(json);
  if (!r.success) return { ok: false, why: problems(r.error) };
  if (r.data.runId !== where.runId) return { ok: false, why: 'runId: names another run' };
  if (where.taskId !== undefined && r.data.taskId !== where.taskId) return { ok: false, why: 'taskId: differs from its entry' };
  return { ok: true, result: r.data };
}

/** Told of each result (or record) a reader skipped: the run it was read for, and why. */
export type IgnoredHandler = (runId: string, why: string) => void;
