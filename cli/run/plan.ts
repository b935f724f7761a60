/**
 * `gaxx run`'s flags as one checked plan, before anything touches Redis or an agent: which
 * hosts (addresses or a fleet), which mode (one task per host, or one per input record), the
 * command template and the per-task limits. Every mistake is a USAGE error naming the flag.
 */
import { GaxxError, REQUEST_LIMITS } from '../../proto/index.js';
import { LIMITS, type TaskInput } from '../../scheduler/light/index.js';
import {
  boolFlag,
  durationFlag,
  envFlag,
  intFlag,
  restCommand,
  sizeFlag,
  stringFlag,
  stringsFlag,
  usageError,
  workDirFlag,
  type FlagValues,
} from '../command.js';
import { agentAddress } from '../commands/exec.js';
import { CommandTemplate, RECORD } from './template.js';

/** Default bound on a run's tasks queued or running at once (without --concurrency). */
export const DEFAULT_WINDOW = 1000;
/** The most tasks of one run queued or running at once (--concurrency). */
export const MAX_RUN_CONCURRENCY = 100_000;

/** The per-task fields every task of the run shares. */
export type TaskCommon = Pick<TaskInput, 'env' | 'timeoutMs' | 'workDir' | 'outputCapBytes' | 'retry'>;

export interface RunPlan {
  mode: 'each-host' | 'tasks';
  argv: string[];
  /** Set in tasks mode. */
  template?: CommandTemplate;
  /** `--tasks` value: a file or '-'. */
  tasks?: string;
  separator: '\n' | '\0';
  /** Agent addresses (with --agent). */
  agents?: string[];
  /** Fleet name (with --fleet). */
  fleet?: string;
  common: TaskCommon;
  /** At most this many tasks of the run queued or running at once. */
  window: number;
  resultsDir?: string;
  waitTimeoutMs?: number;
  /** --timings: report where the run's time went. */
  timings: boolean;
}

const usage = (message: string): GaxxError => usageError('run', message);

/** The per-task values every agent checks (proto/limits.ts), checked here before anything is queued. */
function commonOf(flags: FlagValues): TaskCommon {
  const timeoutMs = durationFlag(flags, 'timeout', 'run', 1, REQUEST_LIMITS.timeoutMs);
  const retries = intFlag(flags, 'retries', 'run', 0, LIMITS.attempts - 1);
  const cap = sizeFlag(flags, 'output-cap', 'run', 1, REQUEST_LIMITS.outputCapBytes);
  const workDir = workDirFlag(flags, 'run');
  return {
    env: envFlag(flags, 'run'),
    ...(timeoutMs ? { timeoutMs } : {}),
    ...(workDir !== undefined ? { workDir } : {}),
    ...(cap ? { outputCapBytes: cap } : {}),
    retry: { attempts: (retries ?? 4) + 1, retryOnFailure: boolFlag(flags, 'retry-on-failure') },
  };
}

function hostsOf(flags: FlagValues, defaultPort: number): Pick<RunPlan, 'agents' | 'fleet'> {
  const raw = stringsFlag(flags, 'agent')
    .flatMap((a) => a.split(','))
    .filter((a) => a !== '');
  const fleet = stringFlag(flags, 'fleet');
  if (fleet !== undefined && raw.length > 0) throw usage('give --fleet or --agent, not both');
  if (fleet !== undefined) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(fleet)) throw usage(`--fleet '${fleet}' is not a fleet name`);
    return { fleet };
  }
  if (raw.length === 0) throw usage('give --fleet F or --agent ADDR[,ADDR...]');
  return { agents: [...new Set(raw.map((a) => agentAddress(a, defaultPort, 'run')))] };
}

/** Checks `gaxx run`'s flags and argv; throws USAGE for any mistake. */
export function planRun(flags: FlagValues, rest: string[], defaultPort: number): RunPlan {
  // The command as given (a task list's records only add to it: each task is checked again at enqueue).
  const argv = restCommand(rest, 'run', 'gaxx run --agent ADDR -- uptime');
  const tasks = stringFlag(flags, 'tasks');
  const eachHost = boolFlag(flags, 'each-host');
  if (tasks !== undefined && eachHost) throw usage('--each-host runs one task per host; it does not take --tasks');
  if (tasks === undefined && boolFlag(flags, 'null')) throw usage('-0 separates --tasks records by NUL; give --tasks');
  if (tasks === undefined && flags.concurrency !== undefined)
    throw usage('--concurrency bounds the tasks of a --tasks list; a run without one has one task per host');
  // Without a task list nothing is replaced: `{}` is the command's own (find -exec ls {} +).
  const replace = stringFlag(flags, 'replace');
  if (replace !== undefined && tasks === undefined) throw usage('--replace names what stands for a --tasks record; give --tasks');
  if (replace !== undefined && !/^[^\s]{1,16}$/.test(replace)) throw usage('--replace takes 1 to 16 characters, none of them a space');
  if (replace !== undefined && replace.includes('{#}')) throw usage("--replace cannot hold {#}: that stands for the record's number");
  if (tasks === '') throw usage('--tasks needs a file name, or - for stdin');
  const hosts = hostsOf(flags, defaultPort);
  const concurrency = intFlag(flags, 'concurrency', 'run', 1, MAX_RUN_CONCURRENCY);
  const waitMs = durationFlag(flags, 'wait-timeout', 'run');
  const resultsDir = stringFlag(flags, 'results');
  if (resultsDir === '') throw usage('--results needs a directory');
  return {
    mode: tasks === undefined ? 'each-host' : 'tasks',
    argv,
    ...(tasks !== undefined ? { tasks, template: CommandTemplate.compile(argv, replace ?? RECORD) } : {}),
    separator: boolFlag(flags, 'null') ? '\0' : '\n',
    ...hosts,
    common: commonOf(flags),
    window: concurrency ?? DEFAULT_WINDOW,
    ...(resultsDir ? { resultsDir } : {}),
    ...(waitMs ? { waitTimeoutMs: waitMs } : {}),
    timings: boolFlag(flags, 'timings'),
  };
}
