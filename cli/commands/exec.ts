/** `gaxx exec --agent ADDR -- CMD ARGS...`: one command on one agent, directly over mTLS. */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import {
  exitCodeFor,
  formatDuration,
  formatHostPort,
  formatSize,
  GaxxError,
  isExecTaskId,
  isGaxxError,
  lostReason,
  parseHostPort,
  refusedUnstarted,
  REQUEST_LIMITS,
  type Exit__Output,
} from '../../proto/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import type { OutputChunk } from '../../scheduler/index.js';
import { execTaskResult, lostExecResult, taskResultJson } from '../result-json.js';
import {
  boolFlag,
  durationFlag,
  envFlag,
  JSON_FLAG,
  restCommand,
  sizeFlag,
  stopSayer,
  stringFlag,
  usageError,
  workDirFlag,
  WORKDIR_FLAG,
  type Command,
  type CommandContext,
} from '../command.js';
import { onAbort } from '../abort-fanout.js';
import { MAX_EXEC_STDIN_BYTES, readExecStdin } from '../exec-stdin.js';
import { agentClientOptions } from '../config.js';
import { operatorCredentials } from '../operator-credentials.js';
import type { Output } from '../output.js';

const usage = (message: string): GaxxError => usageError('exec', message);

/** `host:port` as given, or `host` with the configured agent port; a USAGE error of `command` when it is neither. */
export function agentAddress(raw: string, defaultPort: number, command: string): string {
  try {
    const { host, port } = parseHostPort(raw, { defaultPort, what: '--agent' });
    return formatHostPort(host, port);
  } catch (e) {
    throw usageError(command, `${(e as Error).message}; use HOST[:PORT]`);
  }
}

/** The exit code of a task the agent stopped (its SIGTERM) that still exited 0 on its own. */
export const STOPPED_EXIT_CODE = 128 + 15;

/**
 * The shell convention: a process ended by signal N exits 128+N; a task whose end is unknown
 * (lost with its agent or the agent's launcher) exits as UNAVAILABLE does (12), as `gaxx run`
 * does for an unknown outcome. A task the agent stopped (its timeout, its output cap, the agent's
 * shutdown: SIGTERM to its group) never exits 0, even when it caught the signal and exited 0
 * itself (`gaxx exec --timeout 2s -- job && deploy` must not deploy): 143, as if the SIGTERM had
 * ended it; `gaxx run` counts such a task as timed out or killed, never succeeded.
 */
export function exitCodeOf(exit: Exit__Output): number {
  if (exit.reason === 'cancelled') return 130;
  if (lostReason(exit.reason)) return exitCodeFor('UNAVAILABLE');
  if (exit.signal) return 128 + ((constants.signals as Record<string, number>)[exit.signal] ?? 0);
  if (exit.reason && exit.code === 0) return STOPPED_EXIT_CODE;
  return exit.code;
}

/** The agent's notes on how the task ended; `midLine`: the output shown last ended without a newline (cut at the cap, say). */
function reportExit(out: Output, exit: Exit__Output, midLine: boolean): void {
  const notes: string[] = [];
  const lost = lostReason(exit.reason);
  if (lost) notes.push(`gaxx: the task's end is unknown: ${exit.error || exit.reason}`);
  else if (exit.error) notes.push(`gaxx: remote command failed to start: ${exit.error}`);
  // Stopped at the cap (reason output_cap), or ended on its own with its output past it.
  if (exit.reason === 'output_cap') notes.push('gaxx: output cut at the output cap: the agent stopped the task there (--output-cap)');
  else if (exit.outputCapped) notes.push('gaxx: output truncated at the cap (--output-cap); the task ended on its own');
  else if (exit.truncated) notes.push('gaxx: output truncated');
  if (exit.reason && exit.reason !== 'output_cap' && !lost) notes.push(`gaxx: task ended by the agent (${exit.reason})`);
  // On a terminal the notes would continue the output's last line.
  if (notes.length > 0) out.note(`${midLine ? '\n' : ''}${notes.join('\n')}`);
}

export const command: Command = {
  usage:
    'gaxx exec --agent ADDR [--timeout D] [--output-cap BYTES] [--task-id ID] [--workdir DIR] [--env K=V ...] [--stdin FILE | --no-stdin] [--json] -- CMD ARGS...',
  description: [
    'Runs one command on one agent directly, with the operator certificate of this installation,',
    'streams its stdout and stderr as they arrive, and exits with the remote exit code (128+N when',
    'a signal N ended it; 143 when the agent stopped it at --timeout or --output-cap and it still',
    'exited 0). Everything after -- is the argv, never a shell string: use',
    "`-- sh -c '...'` for shell syntax; a word that is not valid UTF-8 is refused (exit 2): its",
    'bytes could not reach the task unchanged. Ctrl-C cancels the remote task; a second Ctrl-C quits.',
    'A closed stdout (its reader went away) cancels it too, exit 141; once its exit is here, a stop',
    'has nothing left to cancel and says so.',
    "When stdin is a pipe or a file it is read to its end first and sent as the command's stdin",
    `(at most ${MAX_EXEC_STDIN_BYTES} bytes; more is refused with exit 2 before anything is sent);`,
    'a terminal is never read. Use --no-stdin when stdin stays open (like ssh -n). A stdin that',
    'cannot be read (a directory, one open only for writing, a read that fails) is never sent as',
    'empty: nothing runs, exit 3 (FILE_ACCESS, naming stdin and the errno).',
    'A command that is not there exits 127, one that cannot be run 126, as a shell says. Agent',
    'refusals exit with their error code (see gaxx --help): an agent that could not set the task',
    'up (its work dir cannot be made: a read-only or full disk; its sandbox or a process could not',
    'start) exits 12 (UNAVAILABLE), naming why; the command never ran. This path bypasses the queue.',
  ].join('\n'),
  flags: {
    agent: { type: 'string', valueName: 'ADDR', help: 'agent address HOST[:PORT] (port default 8088)' },
    timeout: {
      type: 'string',
      valueName: 'D',
      help: `how long before the agent kills the task: 30s, 10m, 1h; at most ${formatDuration(REQUEST_LIMITS.timeoutMs)} (default: the agent's)`,
    },
    'output-cap': {
      type: 'string',
      valueName: 'BYTES',
      help: `stop the task once its output (stdout and stderr together) passes BYTES: the agent kills it (SIGTERM: exit 143; a task that ended on its own before the kill reached it exits with its own code, its output truncated at the cap), its first BYTES shown; 65536, 64k, 16M; 1 to ${formatSize(REQUEST_LIMITS.outputCapBytes)} (default: the agent's --default-output-cap, 16M unless set)`,
    },
    'task-id': { type: 'string', valueName: 'ID', help: 'task id ([A-Za-z0-9._-]); re-using a running id attaches to it' },
    workdir: WORKDIR_FLAG,
    env: { type: 'string', valueName: 'K=V', multiple: true, help: "environment variable for the command (the agent's own is never inherited)" },
    stdin: { type: 'string', valueName: 'FILE', help: "send FILE as the command's stdin ('-': standard input, even a terminal)" },
    'no-stdin': { type: 'boolean', help: 'send no stdin, even when standard input is a pipe or a file' },
    json: {
      ...JSON_FLAG,
      help: 'print one JSON result at the end instead of streaming: the fields of a task line of `gaxx run --json` (outcome, exitCode, signal, durationMs, output...), no type, plus the remote pid',
    },
  },
  takesRest: true,
  handlesInterrupt: true,
  saysStop: true,
  examples: [
    'gaxx exec --agent 10.0.0.5 -- uptime',
    "gaxx exec --agent h1.internal:8088 --timeout 30s -- sh -c 'echo hi; exit 3'",
    'gaxx exec --agent 127.0.0.1:8088 --json -- cat /etc/os-release',
    "printf 'a\\nb\\n' | gaxx exec --agent 10.0.0.5 -- wc -l",
    'gaxx exec --agent 10.0.0.5 --stdin job.json -- jq .name',
  ],
  async run(ctx) {
    let exit: Exit__Output | undefined;
    // What a stop (Ctrl-C, a closed stdout) does, said when it comes (Command.saysStop): the
    // remote task is cancelled, or, once its exit is here, there is nothing left to cancel.
    const say = stopSayer(ctx.out, ctx.signal);
    const sayStop = (): void => say(exit ? 'the task already ended: nothing to cancel' : 'cancelling');
    const off = onAbort(ctx.signal, sayStop);
    try {
      const code = await runExec(ctx, (e) => (exit = e));
      // Output still buffered for a reader that leaves now: a stop named as above, not an end in the exit's flush.
      await ctx.out.flushed(ctx.signal);
      sayStop();
      return code;
    } finally {
      off();
    }
  },
};

/** The command's work; `exited` is told the task's exit as soon as it comes. */
async function runExec({ flags, rest, config, out, io, signal }: CommandContext, exited: (e: Exit__Output) => void): Promise<number> {
  const rawAgent = stringFlag(flags, 'agent');
  if (!rawAgent) throw usage('--agent ADDR is required');
  const argv = restCommand(rest, 'exec', 'gaxx exec --agent ADDR -- uptime');
  // The agent's limits (proto/limits.ts), as `gaxx run` checks them: refused before anything is sent.
  const timeoutMs = durationFlag(flags, 'timeout', 'exec', 1, REQUEST_LIMITS.timeoutMs);
  const cap = sizeFlag(flags, 'output-cap', 'exec', 1, REQUEST_LIMITS.outputCapBytes);
  const env = envFlag(flags, 'exec');
  const workDir = workDirFlag(flags, 'exec');
  const stdinFile = stringFlag(flags, 'stdin');
  const noStdin = boolFlag(flags, 'no-stdin');
  if (noStdin && stdinFile !== undefined) throw usage('give --stdin FILE or --no-stdin, not both');
  if (stdinFile === '') throw usage('--stdin needs a FILE (or - for standard input)');
  const givenId = stringFlag(flags, 'task-id');
  if (givenId !== undefined && !isExecTaskId(givenId)) throw usage(`--task-id '${givenId}' must be 1-128 characters of [A-Za-z0-9._-], not . or ..`);
  const taskId = givenId ?? `exec-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const address = agentAddress(rawAgent, config.agent.port, 'exec');
  const creds = operatorCredentials(config.paths.operatorCertDir, config.paths.caDir);
  // Read before connecting: input over the limit is refused with nothing sent to the agent.
  const input = await readExecStdin({ ...(stdinFile !== undefined ? { file: stdinFile } : {}), none: noStdin }, io, signal);
  const client = AgentClient.connect({ address }, creds, agentClientOptions(config));
  const output: OutputChunk[] = [];
  let started = { pid: 0, attached: false, replayed: false };
  let startedAt: number | undefined;
  let exit: Exit__Output | undefined;
  let lost: string | undefined;
  let midLine = false;
  try {
    const req = {
      taskId,
      argv,
      env,
      timeoutMs: timeoutMs ?? 0,
      ...(workDir !== undefined ? { workDir } : {}),
      outputCapBytes: cap ?? 0,
      ...(input ? { stdin: input } : {}),
    };
    for await (const ev of client.exec(req, { signal })) {
      if (ev.started) {
        started = ev.started;
        startedAt ??= Date.now();
      } else if (ev.stdout) {
        if (out.json) output.push({ stream: 1, data: ev.stdout });
        else out.writeOut(ev.stdout);
        midLine = ev.stdout.length > 0 && ev.stdout[ev.stdout.length - 1] !== 10;
      } else if (ev.stderr) {
        if (out.json) output.push({ stream: 2, data: ev.stderr });
        else out.writeErr(ev.stderr);
        midLine = ev.stderr.length > 0 && ev.stderr[ev.stderr.length - 1] !== 10;
      } else if (ev.exit) exited((exit = ev.exit));
    }
  } catch (e) {
    // The agent had the request (it said Started, or the request went out), then the call
    // broke: the task ran there, or may have, and its end is unknown (the agent, or the
    // connection to it, went away), not "no agent answering".
    // Unless the agent itself said the task never started (it could not set it up): said as it is.
    const sent = started.pid > 0 || (isGaxxError(e) && e.details?.requestSent === true);
    if (!sent || !isGaxxError(e, 'UNAVAILABLE') || refusedUnstarted(e)) throw e;
    const how = started.pid > 0 ? `while task ${taskId} ran (pid ${started.pid})` : `after task ${taskId} was sent to it (it may have started)`;
    lost = `agent ${address} went away ${how}: its end is unknown; if the agent still runs, the same command with --task-id ${taskId} attaches to it (${e.message})`;
  } finally {
    client.close();
  }
  if (lost !== undefined) {
    // As `gaxx run` reports it: the output that came, an unknown outcome, exit 12.
    if (!out.json) {
      // On a terminal the error would continue the output's last line.
      if (midLine) out.writeErr('\n');
      throw new GaxxError('UNAVAILABLE', lost);
    }
    const seen = { ms: startedAt === undefined ? 0 : Date.now() - startedAt, output };
    out.result(taskResultJson(lostExecResult(taskId, address, started, lost, seen), output, { pid: started.pid }), () => '');
    return exitCodeFor('UNAVAILABLE');
  }
  if (!exit) throw new GaxxError('UNAVAILABLE', `agent ${address} ended task ${taskId} without an exit event`);
  const code = exitCodeOf(exit);
  // The same shape as `gaxx run --json` (cli/result-json.ts), plus the remote pid.
  if (out.json) out.result(taskResultJson(execTaskResult(taskId, address, exit, started), output, { pid: started.pid }), () => '');
  else reportExit(out, exit, midLine);
  return code;
}
