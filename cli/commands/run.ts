/** `gaxx run --agent ADDR[,ADDR...] -- CMD ARGS...`: one task per agent, through the queue. */
import { GaxxError, exitCodeFor } from '../../proto/index.js';
import { agentConnector, newRunId, redisTarget, resumeRun, runAndWait, type OutputChunk, type RunAndWaitOptions, type RunOutcome, type TaskInput, type TaskResult } from '../../scheduler/index.js';
import { boolFlag, durationFlag, envFlag, JSON_FLAG, numberFlag, stringsFlag, usageError, type Command, type FlagValues } from '../command.js';
import type { Output } from '../output.js';
import { taskResultJson } from '../result-json.js';
import { HumanRunPrinter } from '../run-printer.js';
import { operatorSigner } from '../operator-credentials.js';
import { schedulerCredentials } from '../scheduler-credentials.js';
import { agentAddress } from './exec.js';

const usage = (message: string): GaxxError => usageError('run', message);


/** A task id from an agent address: its position plus the address made id-safe. */
export function taskIdFor(index: number, address: string): string {
  return `${index}-${address.replace(/[^A-Za-z0-9._-]+/g, '_')}`.slice(0, 80);
}

/** The tasks of a fleet-less run: one per address, pinned to it. */
export function buildTasks(addresses: string[], argv: string[], flags: FlagValues): TaskInput[] {
  const timeoutMs = durationFlag(flags, 'timeout', 'run');
  const retries = numberFlag(flags, 'retries', 'run', 0);
  return addresses.map((address, i) => ({
    taskId: taskIdFor(i, address),
    agents: [address],
    target: { host: address },
    argv,
    env: envFlag(flags, 'run'),
    ...(timeoutMs ? { timeoutMs } : {}),
    retry: { attempts: (retries ?? 4) + 1, retryOnFailure: boolFlag(flags, 'retry-on-failure') },
  }));
}

function printJson(out: Output, r: TaskResult, output: OutputChunk[]): void {
  out.writeOut(`${JSON.stringify(taskResultJson(r, output))}\n`);
}

/** 0 when every task succeeded; UNAVAILABLE's code when some never ran or its outcome was lost; else 1. */
export function runExitCode(results: TaskResult[]): number {
  if (results.some((r) => r.outcome === 'unreachable' || r.outcome === 'error' || r.outcome === 'unknown')) return exitCodeFor('UNAVAILABLE');
  return results.every((r) => r.outcome === 'succeeded') ? 0 : 1;
}

/** The exit code of a finished wait: cancelled 130, ended early by its reason, else by the results. */
export function outcomeExitCode(res: RunOutcome): number {
  if (res.cancelled) return exitCodeFor('CANCELLED');
  if (res.ended) return exitCodeFor(res.ended.code);
  return runExitCode([...res.results.values()]);
}

export const command: Command = {
  usage: 'gaxx run --agent ADDR[,ADDR...] [--timeout D] [--retries N] [--retry-on-failure] [--env K=V ...] [--json] -- CMD ARGS...',
  description: [
    'Runs CMD on every listed agent through the Redis queue: one task per agent, pinned to it.',
    'Output is printed as it arrives, each line prefixed with its host when there are several,',
    'and a summary line per host as each task finishes (--json: one JSON object per task, one per',
    'line, as each finishes). Exits 0 only when every task succeeded, 1 when some command',
    'failed, 12 when an agent could not be reached or a task\'s outcome was lost (`unknown`: it',
    'started but its result never came back), 13 when --wait-timeout ended the wait, 12 when Redis',
    'stayed unreachable for 60 s, and 130 when cancelled. The run id is printed first (stderr; with',
    '--json as the first object); tasks still without a result are reported `unknown` and stay',
    'queued for `gaxx run --resume ID`, which collects an earlier run (also one whose gaxx run was',
    'killed): no other run\'s worker takes its jobs. A non-zero exit is a',
    'result, not retried unless --retry-on-failure. Ctrl-C cancels the run: tasks not yet taken',
    'are withdrawn, running ones are stopped on their agents, and every task\'s outcome is',
    'reported (cancelled for the stopped ones); a second Ctrl-C quits at once. Without a running',
    '`gaxx scheduler`, this process works on the queue itself until the run is done. Redis:',
    '--redis-url / GAXX_REDIS_URL, else an embedded redis-server in the state dir. Agents are',
    'reached with the scheduler certificate in <state>/scheduler/certs, issued from the local CA',
    'on first use. Every task is signed with the operator certificate (as for gaxx exec) and',
    'agents run only what it signed: a job written into Redis by other means is refused.',
  ].join('\n'),
  flags: {
    agent: { type: 'string', valueName: 'ADDR[,ADDR...]', multiple: true, help: 'agent addresses HOST[:PORT] (port default 8088); repeat or comma-separate' },
    timeout: { type: 'string', valueName: 'D', help: "how long before the agent kills a task: 30s, 10m, 1h (default: the agent's)" },
    retries: { type: 'string', valueName: 'N', help: 'dispatch retries when an agent is unreachable (default 4)' },
    'retry-on-failure': { type: 'boolean', help: 'also re-run a command that exits non-zero (up to --retries more times)' },
    env: { type: 'string', valueName: 'K=V', multiple: true, help: 'environment variable for the command' },
    'wait-timeout': { type: 'string', valueName: 'D', help: 'stop waiting after D (e.g. 10m): tasks without a result are reported unknown and stay queued (exit 13)' },
    resume: { type: 'string', valueName: 'ID', help: 'serve and wait for the remaining tasks of an earlier run (no --agent or command)' },
    json: { ...JSON_FLAG, help: 'print one JSON object per task (JSON Lines) instead of text' },
  },
  takesRest: true,
  handlesInterrupt: true,
  examples: ['gaxx run --agent 10.0.0.5,10.0.0.6 -- uptime', "gaxx run --agent 127.0.0.1:8088 --json -- sh -c 'echo hi'"],
  async run({ flags, rest, config, out, signal }) {
    const resume = typeof flags.resume === 'string' ? flags.resume : undefined;
    if (resume !== undefined) return resumeCommand(resume, { flags, config, out, signal });
    const raw = stringsFlag(flags, 'agent').flatMap((a) => a.split(',')).filter((a) => a !== '');
    if (raw.length === 0) throw usage('--agent ADDR[,ADDR...] is required');
    if (rest.length === 0) throw usage('give the command after --, e.g. gaxx run --agent ADDR -- uptime');
    const addresses = [...new Set(raw.map((a) => agentAddress(a, config.agent.port)))];
    const tasks = buildTasks(addresses, rest, flags);
    const human = new HumanRunPrinter(out, new Map(tasks.map((t, i) => [t.taskId, addresses[i] as string])));
    return waitAndReport(out, human, { flags, config, signal }, (o) => runAndWait({ runId: newRunId(), tasks }, o));
  },
};

type Ctx = Pick<Parameters<Command['run']>[0], 'flags' | 'config' | 'signal'>;

/** Runs `go` with the shared wait options, prints per task, returns the exit code. */
async function waitAndReport(out: Output, human: HumanRunPrinter, ctx: Ctx, go: (o: RunAndWaitOptions) => Promise<RunOutcome>): Promise<number> {
  const waitMs = durationFlag(ctx.flags, 'wait-timeout', 'run');
  // Signed with the operator's key: agents run queued work only as an operator signed it.
  const signer = operatorSigner(ctx.config.paths.operatorCertDir);
  const creds = await schedulerCredentials(ctx.config.paths);
  const target = await redisTarget(ctx.config.redis.url, ctx.config.paths.stateDir, { allowInsecure: ctx.config.redis.insecure });
  try {
    const res = await go({
      settings: target.settings,
      signer,
      connect: agentConnector(creds, { deadlineMs: ctx.config.agent.deadlineMs, connectTimeoutMs: ctx.config.agent.connectTimeoutMs, token: ctx.config.agent.token }),
      cancel: ctx.signal,
      ...(waitMs ? { timeoutMs: waitMs } : {}),
      onStart: (runId) => (out.json ? out.writeOut(`${JSON.stringify({ runId })}\n`) : out.note(`gaxx: run ${runId}`)),
      onRedis: (down, ms) => out.note(down ? `gaxx: Redis unreachable for ${Math.round(ms / 1000)}s` : `gaxx: Redis is back after ${Math.round(ms / 1000)}s`),
      ...(out.json
        ? { onResult: (r: TaskResult, o: OutputChunk[]) => printJson(out, r, o) }
        : { onLive: (id: string, c: OutputChunk) => human.live(id, c), onResult: (r: TaskResult, o: OutputChunk[], shown: boolean) => human.result(r, o, shown) }),
    });
    if (res.cancelled) out.note(`gaxx: run ${res.runId} cancelled`);
    else if (res.ended) out.note(`gaxx: ${res.ended.message}; tasks without a result stay queued: gaxx run --resume ${res.runId}`);
    return outcomeExitCode(res);
  } finally {
    await target.release();
  }
}

/** `gaxx run --resume ID`. */
async function resumeCommand(runId: string, ctx: Ctx & { out: Output }): Promise<number> {
  const human = new HumanRunPrinter(ctx.out, new Map());
  return waitAndReport(ctx.out, human, ctx, (o) => resumeRun(runId, o));
}
