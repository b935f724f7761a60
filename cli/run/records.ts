/**
 * From a task-list record to a task: the one place that decides whether a record can become a
 * task, for every source (a file, stdin, -0). A record that cannot (longer than one argument may
 * be, not UTF-8, starting with `-` where the command would read it as an option (option-records.ts),
 * or making an argv the agent would refuse once `{}` is replaced: a NUL byte, an empty command,
 * ...) is never changed to fit and never stops the run: it becomes that record's
 * own result, outcome `refused` with code INVALID_ARGUMENT, and is neither queued nor run.
 * argv travels as protobuf strings, which are UTF-8 only: a record's exact bytes can reach the
 * task only when they are UTF-8.
 */
import { requestProblems } from '../../proto/index.js';
import type { RefusedTask, TaskInput } from '../../scheduler/index.js';
import type { RunPlan } from './plan.js';
import { MAX_RECORD_BYTES, type RawRecord } from './task-source.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A record as it became a task (`record`: its text) or was refused (`record` set when it was text). */
export interface RecordTask {
  task: TaskInput | RefusedTask;
  record: string | undefined;
}

/** The record's text, or undefined when it is not UTF-8. */
function decoded(bytes: Buffer): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** A refusal of record `seq`. */
function refused(seq: number, why: string): RefusedTask {
  return { taskId: String(seq), refused: { code: 'INVALID_ARGUMENT', message: `record ${seq} ${why}; it was not run` } };
}

/** The task of input record number `seq` (task id = seq), for any free host, or its refusal. */
export function recordTask(plan: RunPlan, raw: RawRecord, seq: number): RecordTask {
  if (!Buffer.isBuffer(raw)) return { task: refused(seq, `is longer than ${MAX_RECORD_BYTES} bytes (the most one argument may be)`), record: undefined };
  const record = decoded(raw);
  if (record === undefined)
    return { task: refused(seq, 'is not valid UTF-8 (a task gets its arguments as UTF-8 text, so these bytes cannot reach it unchanged)'), record };
  const option = plan.template?.recordProblem(record);
  if (option !== undefined) return { task: refused(seq, option), record };
  const argv = plan.template?.render(record, seq) ?? plan.argv;
  const problems = requestProblems({ argv });
  if (problems.length > 0) return { task: refused(seq, `makes a command an agent refuses: ${problems.join('; ')}`), record };
  const task: TaskInput = {
    taskId: String(seq),
    ...(plan.fleet ? { fleet: plan.fleet } : { agents: plan.agents as string[] }),
    target: { any: true },
    argv,
    ...plan.common,
  };
  return { task, record };
}
