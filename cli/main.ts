#!/usr/bin/env node
/**
 * The `gaxx` executable. The only CLI module that touches the process: it hands argv, env and
 * the standard streams to runCli, turns the first Ctrl-C, SIGTERM, SIGHUP or closed stdout into a
 * cancellation for commands that can cancel remote work, and exits with the code runCli returns.
 */
import { fstatSync, statSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { nodeTty } from '../proto/index.js';
import { readFileIfExists } from './settings.js';
import { reportError, runCli, wantsJson } from './dispatch.js';
import type { Io } from './output.js';

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
 * Whether fd is the null device (`< /dev/null`, a service's or a benchmark's stdin): making
 * process.stdin for it sets up a file stream only to read nothing (~5 ms of a `gaxx exec`).
 */
function isNullDevice(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return st.isCharacterDevice() && st.rdev === statSync('/dev/null').rdev;
  } catch {
    return false;
  }
}

const opened = new Set<NodeJS.WriteStream>();

/**
 * process.stdout or process.stderr, set up on first use (Node makes a socket of a pipe, which
 * loads the net machinery: a command that never writes to stderr need not pay for it). A reader
 * that went away (`gaxx run ... | head`) ends us as SIGPIPE ends other tools (141), after the
 * remote work the command started is cancelled (stopAsked): a run whose reader went away does
 * not go on without anyone.
 */
function output(name: 'stdout' | 'stderr'): NodeJS.WriteStream {
  const stream = process[name];
  if (!opened.has(stream)) {
    opened.add(stream);
    // Once: a stream that failed is done (Node destroys it), later writes to it are dropped.
    stream.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') stopAsked(`${name} was closed (its reader went away)`, 141);
    });
    stream.on('error', () => undefined);
  }
  return stream;
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
  get stderrIsTty() {
    return isatty(2);
  },
  get stdin() {
    return process.stdin;
  },
  get stdinIsTty() {
    return isatty(0);
  },
  get stdinIsNull() {
    return isNullDevice(0);
  },
  get colour() {
    return isatty(1) && !process.env.NO_COLOR;
  },
};

const interrupt = new AbortController();
/** What the first request to stop does, when the command can wind down on it (e.g. cancelling, draining). */
let interruptNote: string | undefined;
/** 141 once stdout was closed: the pipeline's reader ended us, whatever the command made of it. */
let stopCode: number | undefined;

/**
 * Someone wants us gone: Ctrl-C, SIGTERM (`timeout`, a service manager, `kill`), SIGHUP (the
 * terminal or ssh session closed) or a closed stdout. A command that can wind down on it (a run
 * cancels its tasks, exec its task, the daemon drains) does so the first time and exits with its
 * own code (130 for a cancelled run, 0 for a drained daemon; 141 after a closed stdout, as
 * SIGPIPE would); a second request, or any to another command, ends it at once with the code of
 * what stopped it.
 */
function stopAsked(why: string, code: number): void {
  if (interruptNote !== undefined && !interrupt.signal.aborted) {
    if (code === 141) stopCode = code;
    const note = code === 130 ? `${interruptNote} (press Ctrl-C again to quit)` : `${why}: ${interruptNote} (once more, or Ctrl-C, quits at once)`;
    // stderr may be gone too (a closed terminal): the note is best effort.
    output('stderr').write(`gaxx: ${note}\n`, () => undefined);
    interrupt.abort();
    return;
  }
  process.exit(code);
}
process.on('SIGINT', () => stopAsked('interrupted', 130));
process.on('SIGTERM', () => stopAsked('SIGTERM', 143));
process.on('SIGHUP', () => stopAsked('SIGHUP', 129));

/**
 * An exception no command caught (thrown in a library's callback, say) goes through the error
 * funnel as one line, as any other failure does: left to Node, it would print the source line
 * it came from, which in the bundle is a whole minified vendor file.
 */
function unexpected(e: unknown): void {
  process.exit(reportError(e, io, process.env.GAXX_DEBUG === '1', wantsJson(process.argv.slice(2))));
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
    signal: interrupt.signal,
    onInterruptible: (note) => {
      interruptNote = note;
    },
  });
  // Flush what is buffered before exiting; open handles (e.g. a gRPC channel) must not keep us alive.
  for (const stream of opened) await new Promise<void>((resolve) => stream.write('', () => resolve()));
  return process.exit(stopCode ?? code);
}

// No top-level await: the bundle is a CommonJS file (loaded with its V8 code cache, see scripts/bundle.mjs).
void main();
