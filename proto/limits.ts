/**
 * Request limits shared by every side that validates a task: the agent (Exec requests), the
 * scheduler (job data at enqueue and when read back) and the CLI. One table, so a task the
 * queue accepts is never refused by the agent for its argv or env, and the other way round.
 */
import { GaxxError } from './errors.js';

export const REQUEST_LIMITS = {
  /** argv entries, bytes of one entry (UTF-8), bytes of all entries. */
  argvItems: 4096,
  /**
   * Linux's MAX_ARG_STRLEN (32 pages: 131072 bytes) counts an argument's terminating NUL, so
   * the longest argument execve takes is one byte less; a longer one fails there with E2BIG.
   */
  argBytes: 128 * 1024 - 1,
  argvBytes: 1024 * 1024,
  /** env entries, bytes of one value, bytes of all names and values (each pair counted + 2). */
  envEntries: 256,
  envValueBytes: 32 * 1024,
  envBytes: 64 * 1024,
  envNameChars: 128,
  /** stdin sent with one Exec (it fits in one gRPC message). */
  stdinBytes: 1024 * 1024,
  workDirChars: 4096,
  timeoutMs: 7 * 24 * 3600 * 1000,
  /** The largest output cap a task may ask for (the queue's worker holds a task's output until it ends). */
  outputCapBytes: 64 * 1024 * 1024,
} as const;

/**
 * The largest file PutFile takes and GetFile sends: the agent refuses a bigger one, and a client
 * refuses to send one (before reading it) or to take more than this from an agent.
 */
export const MAX_FILE_BYTES = 1024 ** 3;

/** Environment variable names a task may set. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** Bytes of argv, as the limit counts them. */
export function argvBytes(argv: readonly string[]): number {
  return argv.reduce((n, s) => n + Buffer.byteLength(s), 0);
}

/** Bytes of an env, as the limit counts them (`NAME=value\0` for each entry). */
export function envBytes(env: Readonly<Record<string, string>>): number {
  return Object.entries(env).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v) + 2, 0);
}

/** A lone UTF-16 surrogate: argv and env travel and are exec'd as UTF-8, which cannot carry one unchanged. */
const LONE_SURROGATE = /\p{Cs}/u;

/** What is wrong with one argv entry or env value as text (NUL bytes, lone surrogates), or undefined. */
function textProblem(s: string): string | undefined {
  if (s.includes('\0')) return 'no NUL bytes';
  if (LONE_SURROGATE.test(s)) return 'not valid Unicode (a lone surrogate)';
  return undefined;
}

/**
 * What is wrong with an argv or env for the request limits (empty: nothing), as the agent and
 * the queue would say it: the CLI checks these before anything is sent or queued. Everything
 * the agent's Exec schema (agent/exec/exec-request.ts) and the queue's task schema refuse in an
 * argv or env is here too (a unit test holds them together).
 */
export function requestProblems(req: { argv?: readonly string[]; env?: Readonly<Record<string, string>> }): string[] {
  const L = REQUEST_LIMITS;
  const problems: string[] = [];
  const { argv, env } = req;
  if (argv) {
    if (argv.length === 0) problems.push('argv: needs at least the command');
    else if (argv[0] === '') problems.push('argv.0: the command must not be empty');
    if (argv.length > L.argvItems) problems.push(`argv: at most ${L.argvItems} entries (${argv.length} given)`);
    const long = argv.findIndex((a) => Buffer.byteLength(a) > L.argBytes);
    if (long !== -1) problems.push(`argv.${long}: an argv entry is at most ${L.argBytes} bytes`);
    if (argvBytes(argv) > L.argvBytes) problems.push(`argv: totals at most ${L.argvBytes} bytes`);
    const bad = argv.findIndex((a) => textProblem(a) !== undefined);
    if (bad !== -1) problems.push(`argv.${bad}: ${textProblem(argv[bad] as string)}`);
  }
  if (env) {
    const names = Object.keys(env);
    const badName = names.find((k) => !ENV_NAME_PATTERN.test(k));
    if (badName !== undefined) problems.push(`env.${badName}: env names are [A-Za-z_][A-Za-z0-9_]*, at most ${L.envNameChars}`);
    const big = names.find((k) => Buffer.byteLength(env[k] as string) > L.envValueBytes);
    if (big !== undefined) problems.push(`env.${big}: an env value is at most ${L.envValueBytes} bytes`);
    const badValue = names.find((k) => textProblem(env[k] as string) !== undefined);
    if (badValue !== undefined) problems.push(`env.${badValue}: ${textProblem(env[badValue] as string)}`);
    if (names.length > L.envEntries) problems.push(`env: at most ${L.envEntries} entries`);
    if (envBytes(env) > L.envBytes) problems.push(`env: totals at most ${L.envBytes} bytes`);
  }
  return problems;
}

/** The agent's own dir in its data area: the tasks' scratch and warm sandbox dirs; no named work dir lies there. */
export const AGENT_TASKS_DIR = 'tasks';

/**
 * What is wrong with a named work dir (a path under the agent's data dir) as the agent would say
 * it (empty: nothing): the CLI and the queue check it before anything is sent or queued. Whether
 * it leads out through a symlink only the agent can tell, when the task starts.
 */
export function workDirProblems(rel: string): string[] {
  if (Buffer.byteLength(rel) > REQUEST_LIMITS.workDirChars) return [`a work dir is at most ${REQUEST_LIMITS.workDirChars} bytes`];
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(rel)) return ['a work dir has no control characters'];
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (rel.startsWith('/') || rel.includes('\\') || parts.includes('..'))
    return [`work dir '${rel}' must be a path under the agent's data dir (no leading /, no ..)`];
  if (parts.length === 0) return [`work dir '${rel}' names the data dir itself: name a directory under it`];
  if (parts[0] === AGENT_TASKS_DIR) return [`'${AGENT_TASKS_DIR}/' holds the agent's own scratch dirs: name a work dir elsewhere`];
  return [];
}

/** The task id of an Exec (its scratch dir's name): also not `.` or `..`. */
export const EXEC_TASK_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

/** Whether `id` is a task id an agent accepts (EXEC_TASK_ID_PATTERN, not `.` or `..`). */
export function isExecTaskId(id: string): boolean {
  return EXEC_TASK_ID_PATTERN.test(id) && id !== '.' && id !== '..';
}

/**
 * Env names that change how programs load or what a shell or interpreter runs before the
 * command: refused at the edge (ENV_REFUSED), since they would turn any allowed command into
 * arbitrary code in every program of the task, including the agent's own wrappers. The CLI
 * refuses them too, before anything is sent or queued.
 */
const LOADER_ENV =
  /^(LD_.*|NODE_OPTIONS|NODE_PATH|GCONV_PATH|BASH_ENV|ENV|SHELLOPTS|BASHOPTS|PS4|PROMPT_COMMAND|PYTHONSTARTUP|PYTHONPATH|PYTHONHOME|PYTHONINSPECT|PERL5OPT|PERL5LIB|PERLLIB|PERL5DB|RUBYOPT|RUBYLIB|JAVA_TOOL_OPTIONS|_JAVA_OPTIONS|JDK_JAVA_OPTIONS|MALLOC_.*|GLIBC_TUNABLES|LOCPATH|NLSPATH|HOSTALIASES|RESOLV_HOST_CONF|DYLD_.*)$/;

/** ENV_REFUSED for the first env name that changes how programs load; dot-path in details. */
export function refuseLoaderEnv(env: Readonly<Record<string, string>>): void {
  const bad = Object.keys(env).filter((k) => LOADER_ENV.test(k));
  if (bad.length === 0) return;
  const problems = bad.map((k) => `env.${k}: changes how programs load; refused`);
  throw new GaxxError('ENV_REFUSED', problems.join('; '), { details: { problems } });
}
