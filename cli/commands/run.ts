/**
 * `gaxx run`: a command on every host (--each-host, the default) or once per record of a task
 * list (--tasks FILE|-), through the queue. Flags are checked in cli/run/plan.ts, the run is
 * carried out in cli/run/execute.ts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { formatDuration, formatSize, REQUEST_LIMITS } from '../../proto/index.js';
import { DEFAULT_OUTPUT_CAP_BYTES, LIMITS } from '../../scheduler/light/index.js';
import { queueRedis } from '../run/queue-redis.js';
import { boolFlag, durationFlag, JSON_FLAG, stringFlag, usageError, WORKDIR_FLAG, type Command, type FlagValues } from '../command.js';
import { noOperatorCertificate } from '../paths.js';
import { DEFAULT_WINDOW, MAX_RUN_CONCURRENCY, planRun } from '../run/plan.js';

/** Flags that describe a new run: an earlier run resumed keeps what it was submitted with. */
const NEW_RUN_FLAGS = ['fleet', 'agent', 'tasks', 'null', 'replace', 'each-host', 'concurrency', 'timeout', 'retries', 'retry-on-failure', 'output-cap', 'env'];

/** --resume takes no command and none of a new run's flags: they would be ignored. */
function refuseWithResume(flags: FlagValues, hasRest: boolean): void {
  const given = NEW_RUN_FLAGS.filter((f) => flags[f] !== undefined);
  if (hasRest) throw usageError('run', '--resume ID runs the tasks the run was submitted with: give no command after --');
  if (given.length > 0) throw usageError('run', `--resume ID runs the tasks the run was submitted with: it takes no ${given.map((f) => `--${f}`).join(', ')}`);
}

export const command: Command = {
  usage:
    'gaxx run (--fleet F | --agent ADDR[,ADDR...]) [--tasks FILE|- [-0] [--replace STR]] [--each-host] [--concurrency N] [--timeout D] [--retries N] [--retry-on-failure] [--output-cap BYTES] [--env K=V ...] [--workdir DIR] [--results DIR] [--wait-timeout D] [--json] [--timings] -- CMD ARGS...\n' +
    'gaxx run --resume ID [--results DIR] [--wait-timeout D] [--json] [--timings]',
  description: [
    'Runs CMD through the Redis queue. Without --tasks: one task per host, pinned to it (--each-host',
    'says so; it takes no --tasks). With --tasks FILE (- for stdin): one task per input line (NUL-separated record',
    'with -0), each placed on whichever host has a free slot; hosts pull work as they free up.',
    "gaxx run reads no stdin but --tasks -'s: its tasks get none (pipe data to one host's command",
    'with gaxx exec, or copy a file to the hosts with gaxx cp first).',
    '{} in CMD is replaced by the record and {#} by its number, inside words too, and always as',
    'part of one argument: gaxx never passes a command through a shell. {} in code is refused',
    "wherever its program stands (behind nice, timeout, xargs, unshare, strace, bwrap...): a shell's -c",
    "script, flock, script, su or runuser -c, sg's command, watch's or parallel's command, env -S's string,",
    "python -c, perl -e, ruby -e, node -e or -p, php -r, an awk program, a sed script, ssh's remote command,",
    "an option's command (git -c core.sshCommand=, tar -I, rsync -e, scp -S, make VAR=, gdb -ex...)",
    '({#} may: it is no input; other interpreters, xterm -e, tmux, containers are not looked into); pass {}',
    "as an argument instead: `sh -c 'echo \"$1\"' _ {}`, `python3 -c 'import sys; print(sys.argv[1])' {}`.",
    'A record starting with - where it would begin a word (ssh {} uptime, or appended) is refused:',
    'the program would read it as an option; put -- before {} (ssh -- {} uptime) to keep it data, where',
    "that program reads it: a wrapper's -- is the wrapper's (env -- ssh {} is refused, env -- ssh -- {} is",
    "not), so is python3's before -m MOD, and a -- that may be an option's value (grep -e -- {}) ends none.",
    'A record with = is refused where make reads it (make takes X!=CMD as an assignment that runs CMD).',
    'With no {} the record is appended as the last argument; --replace STR makes STR stand for it',
    "instead, so that {} can be the command's own. Without --tasks nothing is replaced. Every line is",
    'a record, an empty one too; when the first line ends in CRLF, the \\r ending each line is',
    'removed (else \\r is data); a UTF-8 byte order mark starting the list is removed (with -0 too;',
    '-0 records are otherwise taken as they are). The list is read as a stream: at',
    'most --concurrency tasks of the run (default 1000) are queued or running at once, so inputs of',
    'millions of lines are fine. A record that cannot become a task (over 131071 bytes, the longest',
    'argument Linux runs, not valid UTF-8, or making a command an agent refuses once {} is replaced,',
    'e.g. with a NUL byte) is not run nor changed: it is reported as its own result, outcome refused',
    '(INVALID_ARGUMENT, with its number and why), and the other records run on. A task list that',
    'cannot be read is never taken as ended: a stdin that is a directory or open only for writing',
    'is refused before any run exists (exit 3, FILE_ACCESS, naming stdin and the errno); a read',
    'that fails once the run exists (EIO, a connection reset) stops it there: its tasks queued or',
    "running are cancelled, the run is failed with that error as its reason (the summary's state",
    'and failure, notEnqueuedFrom), and exits 3, as `gaxx runs`, `runs wait` and --resume say too.',
    "A later batch the queue refuses fails the run the same way, with the queue's error: a --fleet",
    "no longer registered (deleted, or lost with Redis's data) is NOT_FOUND, exit 4.",
    "A Redis that lost the run's records (flushed, restarted without its data) ends the run within",
    "seconds: every task without a result unknown (REDIS_DATA_LOST), the summary's state lost, exit 12.",
    'Output: per-host runs stream output live, each line prefixed with its host; task-list runs',
    "print each task's output when it ends, each line prefixed with host and task number",
    '(coloured on a terminal unless NO_COLOR is set, or TERM is dumb or unset), a progress line on',
    'stderr when it is such a terminal, cut to its width (done/total, or done/N+ while input is still read: N records so far; failed,',
    'refused and cancelled counted apart), and a summary line on stderr. Control characters in',
    "prefixed output are shown escaped (\\x1b); one host's output is unprefixed, escaped the same",
    'line by line to a terminal and its very bytes to a pipe or file (gaxx exec streams raw). --json: JSON Lines on',
    'stdout, {"type":"run"} first, one {"type":"task"} per task (non-UTF-8 output as',
    'stdoutBase64), {"type":"summary"} last (with the run\'s state, and notEnqueuedFrom when',
    'input was left unread). --results DIR: per task DIR/1/<record>/{seq,stdout,stderr,result.json}',
    "(GNU parallel's layout), written as results arrive; in the folder name \\ is written \\\\, / \\_",
    'and NUL \\0; an empty, ., .., over-200-byte or non-text record gets \\#<number>, a repeated',
    'one <record>\\#<number> (the first keeps <record>, whichever ends first). A folder appears whole or not at all, and only for a result: a task',
    'without one when the wait ends early (--wait-timeout, Redis gone) gets none and is counted as not',
    'written. One that cannot be written (a',
    'full disk) changes no outcome: the run goes on, the first failure of each kind is said on',
    'stderr with the path and the fix, the summary counts the folders not written and names how',
    'to get their results (gaxx runs wait ID --json) and how to write the missing folders (gaxx runs',
    'wait ID --results DIR), and the run exits 3 (FILE_ACCESS) unless cancelled or ended early.',
    "--resume ID --results DIR (as gaxx runs wait ID --results DIR) writes that run's folders as its",
    'own --results would have, into a new or empty DIR or the DIR its --results left incomplete (its',
    'gaxx run killed, its wait ended early, a full disk): the folders there are kept, the missing ones',
    "written; a DIR holding anything else (another run's folders: each result.json names its run)",
    'is refused (5), and so is a run whose records expired (4, 24 hours after it): nothing is written.',
    'One gaxx writes into a DIR at a time (it holds DIR/.gaxx-writer while it runs): a DIR another live',
    'gaxx writes into is refused (6), naming its pid.',
    'Exit codes: 0 every task succeeded; 1 some command',
    'failed (not there: 127; cannot be run: 126), timed out or was killed, or some record was refused; 12 some task',
    'was unreachable (never ran: no agent reached, or none could set it up; an any-host task an agent cannot set up,',
    'its data dir read-only or full, its sandbox failing, runs on another agent, not counted as failed), an error',
    'or unknown (may have run, its end lost): infrastructure (the summary counts the three apart); or, resuming, a',
    'task list whose input was never all enqueued; 130',
    'cancelled; 2 usage; 3 some --results folder not written, or the task list could not be read;',
    '4 unknown fleet (also one gone before a later batch of --tasks) or missing --tasks file;',
    "5 --results DIR not empty; 6 another gaxx writes into --results DIR; 13 --wait-timeout passed (the enqueued tasks go on; a task list's",
    "unread input is not read: the run ends interrupted). Output a task printed beyond the run's",
    'output budget (256 MiB stored per run, live and final output together) is not kept: the task',
    'keeps its outcome (a succeeded task still exits 0), its line says "output not stored: over the',
    'run\'s output budget", the summary counts "N with output cut" (also tasks whose output passed',
    '--output-cap), and --json / result.json say truncated. Redis unreachable during a run (per-host or',
    '--tasks): a note on stderr about every 5 s; after 60 s without it the run ends with exit 12',
    '(REDIS_UNAVAILABLE), every task without a result reported unknown. The same when Redis answers but refuses',
    'writes while no result lands for 60 s (MISCONF: its disk is full; OOM: maxmemory; READONLY): the reason is named;',
    'free disk or memory, then `gaxx runs wait ID` (or --resume ID) collects the rest; a task whose job failed for good',
    '(its attempts ran out) is reported so. A result whose output start was lost says outputLost. A non-zero exit of CMD is a result, not retried unless',
    '--retry-on-failure. Ctrl-C cancels: queued tasks are withdrawn, running ones stopped, every',
    'task reported; a second Ctrl-C quits at once. A closed stdout (its reader went away) cancels',
    'the same way, exit 141; so does a stdout that cannot be written (a full disk, /dev/full),',
    'said on stderr as FILE_ACCESS, exit 3. A stop once every task has its result cancels nothing,',
    'and says so. Runs are listed by `gaxx runs`. Without a',
    'running `gaxx scheduler`, this process works on the queue itself. Redis: --redis-url /',
    'GAXX_REDIS_URL, else an embedded redis-server in the state dir. Every task is signed with',
    'the operator certificate (as for gaxx exec) and agents run only what it signed: a job',
    'written into Redis by other means is refused.',
  ].join('\n'),
  flags: {
    fleet: { type: 'string', valueName: 'F', help: "a fleet registered with the scheduler (see 'gaxx status F')" },
    agent: { type: 'string', valueName: 'ADDR[,ADDR...]', multiple: true, help: 'agent addresses HOST[:PORT] (port default 8088); repeat or comma-separate' },
    tasks: { type: 'string', valueName: 'FILE|-', help: 'one task per line of FILE (- reads stdin); a record is at most 131071 bytes (128 KiB less one)' },
    null: { type: 'boolean', short: '0', help: 'records of --tasks are NUL-separated (find -print0)' },
    replace: {
      type: 'string',
      short: 'I',
      valueName: 'STR',
      help: 'STR stands for the record instead of {} (as xargs -I and parallel -I), so the command can hold a literal {}: --replace @@ -- find @@ -exec ls {} +',
    },
    'each-host': { type: 'boolean', help: 'one task per host (the default without --tasks)' },
    concurrency: {
      type: 'string',
      valueName: 'N',
      help: `at most N tasks of this run queued or running at once, 1 to ${MAX_RUN_CONCURRENCY} (with --tasks only; default ${DEFAULT_WINDOW})`,
    },
    timeout: {
      type: 'string',
      valueName: 'D',
      help: `how long before the agent kills a task: 30s, 10m, 1h; at most ${formatDuration(REQUEST_LIMITS.timeoutMs)} (default: the agent's)`,
    },
    retries: { type: 'string', valueName: 'N', help: `dispatch retries when an agent is unreachable, 0 to ${LIMITS.attempts - 1} (default 4)` },
    'retry-on-failure': { type: 'boolean', help: 'also re-run a command that exits non-zero (up to --retries more times)' },
    'output-cap': {
      type: 'string',
      valueName: 'BYTES',
      help: `stop a task whose output (stdout and stderr together) passes BYTES: the agent kills it (SIGTERM) and it counts as killed (exit 1), its first BYTES kept (one that ended on its own before the kill reached it keeps its own outcome, its output truncated at the cap: outputCapped); 65536, 64k, 16M; 1 to ${formatSize(REQUEST_LIMITS.outputCapBytes)} (default ${formatSize(DEFAULT_OUTPUT_CAP_BYTES)}: the queue keeps each task's output in Redis for a day)`,
    },
    env: { type: 'string', valueName: 'K=V', multiple: true, help: 'environment variable for the command' },
    workdir: { ...WORKDIR_FLAG, help: `${WORKDIR_FLAG.help}; tasks of a --tasks list on one host share it` },
    results: {
      type: 'string',
      valueName: 'DIR',
      help: "write each task's stdout, stderr and result.json under DIR (must be new or empty; with --resume, also that run's own --results DIR: its missing folders)",
    },
    'wait-timeout': { type: 'string', valueName: 'D', help: 'give up waiting for results after D (e.g. 10m; default: no limit)' },
    resume: {
      type: 'string',
      valueName: 'ID',
      help: 'serve and collect the remaining tasks of an earlier run (e.g. one whose gaxx run was killed); no command',
    },
    json: { ...JSON_FLAG, help: 'print JSON Lines: the run first, one object per task, a summary last' },
    timings: {
      type: 'boolean',
      help: 'report where the time went (ms since gaxx started: node up, gaxx loaded, redis, enqueued, first and last result, done; and who dispatched): a line on stderr, or "timings" in the JSON summary',
    },
  },
  takesRest: true,
  handlesInterrupt: true,
  // Whether a stop cancels anything is known only once the run has looked (run-shared.ts stopNotes).
  saysStop: true,
  examples: [
    'gaxx run --agent 10.0.0.5,10.0.0.6 -- uptime',
    'gaxx run --fleet web --tasks urls.txt --concurrency 50 --results out -- curl -fsS {}',
    "find . -name '*.png' -print0 | gaxx run --fleet conv --tasks - -0 -- convert {} {}.webp",
    "gaxx run --agent 127.0.0.1:8088 --json -- sh -c 'echo hi'",
  ],
  async run({ flags, rest, hasRest, config, out, io, signal }) {
    const resume = typeof flags.resume === 'string' ? flags.resume : undefined;
    if (resume !== undefined) refuseWithResume(flags, hasRest);
    // The flags are checked before anything starts.
    const waitTimeoutMs = resume === undefined ? undefined : durationFlag(flags, 'wait-timeout', 'run');
    const resultsDir = resume === undefined ? undefined : stringFlag(flags, 'results');
    if (resultsDir === '') throw usageError('run', '--results needs a directory');
    const plan = resume === undefined ? planRun(flags, rest, config.agent.port) : undefined;
    // A home without `gaxx init` has no operator to sign the tasks: said before an embedded
    // redis-server is started (and its state dir made) in it.
    if (!existsSync(join(config.paths.operatorCertDir, 'cert.pem'))) throw noOperatorCertificate(config.paths.operatorCertDir);
    // Redis first, then the queue's modules (ioredis, BullMQ, the scheduler: ~100 ms to load): an
    // embedded redis-server this starts boots meanwhile. The executor awaits it and releases it.
    const redis = queueRedis(config, signal);
    redis.catch(() => undefined);
    const loaded = import('../run/execute.js');
    loaded.catch(() =>
      redis.then(
        (t) => t.release(),
        () => undefined,
      ),
    );
    const { executeRun, resumeRunCommand } = await loaded;
    const ctx = { config, out, io, signal, redis };
    if (resume !== undefined)
      return resumeRunCommand(resume, ctx, {
        ...(waitTimeoutMs ? { waitTimeoutMs } : {}),
        ...(resultsDir ? { resultsDir } : {}),
        timings: boolFlag(flags, 'timings'),
      });
    return executeRun(plan as NonNullable<typeof plan>, ctx);
  },
};
