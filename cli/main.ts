#!/usr/bin/env node
/**
 * The `gaxx` executable. The only CLI module that touches the process: it hands argv, env and
 * the standard streams to runCli, turns the first Ctrl-C, SIGTERM, SIGHUP or closed stdout into a
 * cancellation for commands that can cancel remote work, and exits with the code runCli returns.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { exitCodeFor, nodeTty, printable } from '../proto/index.js';
import { readFileIfExists } from './settings.js';
import { knownFailure, reportError, runCli, wantsJson } from './dispatch.js';
import { stopNote, type StopReason } from './command.js';
import type { Io } from './output.js';
import { colourOn, redrawOn } from './terminal.js';
import type { Readable } from 'node:stream';
import { isNullDevice, nodeReadsNothing, stdinUnreadable, streamTarget, streamWriteError, type StdStream } from './std-streams.js';

function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? '';
  }
}

/**
 * Whether fd is a terminal. node:tty is loaded on the first question only: it brings Node's
 * stream and socket machinery, which `gaxx --version` with its output in a file never needs.
 */
function isatty(fd: number): boolean {
  return nodeTty().isatty(fd);
}

/**
 * The bytes of the words after the script (process.argv.slice(2)) as the kernel holds them
 * (/proc/self/cmdline: NUL-terminated words, the last ones ours), which process.argv decoded
 * lossily; undefined where there is no such file.
 */
function argvBytes(): Buffer[] | undefined {
  const count = process.argv.length - 2;
  let raw: Buffer;
  try {
    raw = readFileSync('/proc/self/cmdline');
  } catch {
    return undefined;
  }
  const words: Buffer[] = [];
  for (let at = 0; at < raw.length;) {
    const end = raw.indexOf(0, at);
    words.push(raw.subarray(at, end === -1 ? raw.length : end));
    at = end === -1 ? raw.length : end + 1;
  }
  return words.length >= count + 2 ? words.slice(words.length - count) : undefined;
}

const opened = new Set<NodeJS.WriteStream>();
/** The streams made so far, by name (process.stdout would make one on first use). */
const made: Partial<Record<StdStream, NodeJS.WriteStream>> = {};
const FD: Record<StdStream, number> = { stdout: 1, stderr: 2 };

/**
 * process.stdout or process.stderr, set up on first use (Node makes a socket of a pipe, which
 * loads the net machinery: a command that never writes to stderr need not pay for it). A failed
 * write ends the command (streamFailed).
 */
function output(name: StdStream): NodeJS.WriteStream {
  const stream = process[name];
  if (!opened.has(stream)) {
    opened.add(stream);
    made[name] = stream;
    // Once: a stream that failed is done (Node destroys it), later writes to it are dropped.
    stream.once('error', (e: NodeJS.ErrnoException) => streamFailed(name, e));
    stream.on('error', () => undefined);
  }
  return stream;
}

/**
 * A write to stdout or stderr failed. A reader that went away (`gaxx run ... | head`) ends us
 * as SIGPIPE ends other tools (141), after the remote work the command started is cancelled
 * (stopAsked): a run whose reader went away does not go on without anyone. Any other failure
 * (a full disk, /dev/full, EIO, a stdout open only for reading) means output is lost: a failed stdout is said
 * on stderr as FILE_ACCESS and ends the command as its reader going away does, with exit 3; a
 * failed stderr cannot be said anywhere, so only the exit code (3) says it, and the command
 * goes on (its results still reach stdout).
 */
function streamFailed(name: StdStream, e: NodeJS.ErrnoException): void {
  if (e.code === 'EPIPE') return stopAsked(`${name} was closed (its reader went away)`, 141);
  const code = exitCodeFor('FILE_ACCESS');
  stopCode ??= code;
  if (name === 'stderr') return;
  const err = streamWriteError(name, e, streamTarget(FD[name]));
  output('stderr').write(`gaxx: ${printable(err.message)} [${err.code}]\n`, () => undefined);
  stopAsked(`stdout failed (${e.code ?? 'error'})`, code);
}

let stdinStream: Readable | undefined;

/**
 * process.stdin, made on first use; for a descriptor Node has no stream for (a directory, a
 * block device: it would hand over one that ends at once, nothing read), a stream reading it as
 * a file, so that a command gets its bytes or its error (EISDIR), never an empty input.
 */
function stdin(): Readable {
  stdinStream ??= nodeReadsNothing(0) ? createReadStream('', { fd: 0, autoClose: false }) : process.stdin;
  return stdinStream;
}

/**
 * The standard streams, lazy, all of them: each stream is created, and each terminal question
 * asked, only by a command that uses it.
 */
const io: Io = {
  get stdout() {
    return output('stdout');
  },
  get stderr() {
    return output('stderr');
  },
  get stderrLive() {
    return redrawOn(process.env, () => isatty(2));
  },
  get stdin() {
    return stdin();
  },
  get stdinIsTty() {
    return isatty(0);
  },
  get stdinIsNull() {
    return isNullDevice(0);
  },
  get stdinUnreadable() {
    return stdinUnreadable(0);
  },
  get stdinFile() {
    return streamTarget(0);
  },
  get colour() {
    return colourOn(process.env, () => isatty(1));
  },
  get stdoutIsTty() {
    return isatty(1);
  },
  async stdoutFlushed() {
    const s = made.stdout;
    // Never written to: never made (output()), nothing buffered.
    if (s === undefined || s.writableLength === 0) return;
    await new Promise<void>((resolve) => s.write('', () => resolve()));
    // A failed write's 'error' (streamFailed: the stop) comes on a later tick than its callback.
    await new Promise<void>((resolve) => setImmediate(resolve));
  },
  get stderrIsTty() {
    return isatty(2);
  },
};

const interrupt = new AbortController();
/** What the first request to stop does, when the command can wind down on it (e.g. cancelling, draining). */
let interruptNote: string | null | undefined;
/**
 * The exit code whatever the command made of it: 141 once stdout's reader went away (the
 * pipeline's reader ended us), 3 (FILE_ACCESS) once stdout or stderr could not be written.
 */
let stopCode: number | undefined;

/**
 * Someone wants us gone: Ctrl-C, SIGTERM (`timeout`, a service manager, `kill`), SIGHUP (the
 * terminal or ssh session closed), a closed stdout or one that cannot be written. A command that
 * can wind down on it (a run cancels its tasks, exec its task, the daemon drains) does so the
 * first time and exits with its own code (130 for a cancelled run, 0 for a drained daemon; 141
 * after a closed stdout, as SIGPIPE would; 3 after a failed one); a second request, or any to
 * another command or after the command ended, ends it at once with the code of what stopped it.
 */
function stopAsked(why: string, code: number): void {
  if (interruptNote !== undefined && !interrupt.signal.aborted) {
    if (code === 141 || code === exitCodeFor('FILE_ACCESS')) stopCode ??= code;
    const reason: StopReason = { why, code };
    // stderr may be gone too (a closed terminal): the note is best effort. Null: the command says
    // what the stop did once it knows (a run with no task left to cancel cancels nothing).
    if (interruptNote !== null) output('stderr').write(`${stopNote(reason, interruptNote)}\n`, () => undefined);
    interrupt.abort(reason);
    return;
  }
  process.exit(code);
}
process.on('SIGINT', () => stopAsked('interrupted', 130));
process.on('SIGTERM', () => stopAsked('SIGTERM', 143));
process.on('SIGHUP', () => stopAsked('SIGHUP', 129));

/** Whether an exception no command caught is being reported. */
let failing = false;
/**
 * An exception no command caught (thrown in a library's callback, say) goes through the error
 * funnel as one line, as any other failure does: left to Node, it would print the source line
 * it came from, which in the bundle is a whole minified vendor file.
 */
function unexpected(e: unknown): void {
  // The first one is reported (what tells a Redis failure apart loads first); others meanwhile are its consequences.
  if (failing) return;
  failing = true;
  void knownFailure(e).then((known) => {
    const code = reportError(known, io, process.env.GAXX_DEBUG === '1', wantsJson(process.argv.slice(2)));
    process.exit(stopCode ?? code);
  });
}
process.on('uncaughtException', unexpected);
process.on('unhandledRejection', unexpected);

/** Runs the command line, flushes what is buffered and exits with runCli's code. */
async function main(): Promise<never> {
  const code = await runCli({
    argv: process.argv.slice(2),
    env: process.env,
    io,
    readFile: readFileIfExists,
    // Without HOME, Node asks the passwd database (nscd, NSS: LDAP or SSSD on some hosts) for
    // it: only a command that uses a default path (no GAXX_HOME) asks.
    get homeDir() {
      return homedir();
    },
    // Asked of the system (the passwd database) only by a command that uses the default
    // operator name (gaxx init): ~0.6 ms that no other command pays.
    get userName() {
      return userName();
    },
    cwd: process.cwd(),
    argvBytes,
    signal: interrupt.signal,
    onInterruptible: (note) => {
      interruptNote = note;
    },
  });
  // Nothing is left to wind down: a stream failing while what is buffered is flushed ends us at once.
  interruptNote = undefined;
  // Flush what is buffered before exiting; open handles (e.g. a gRPC channel) must not keep us alive.
  for (const stream of opened) await new Promise<void>((resolve) => stream.write('', () => resolve()));
  return process.exit(stopCode ?? code);
}

// No top-level await: the bundle is a CommonJS file (loaded with its V8 code cache, see scripts/bundle.mjs).
void main();
