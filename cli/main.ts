#!/usr/bin/env node
/**
 * The `gaxx` executable. The only CLI module that touches the process: it hands argv, env and
 * the standard streams to runCli, turns the first Ctrl-C into a cancellation for commands that
 * can cancel remote work, and exits with the code runCli returns.
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
 * that went away (`gaxx run ... | head`) ends us quietly, as SIGPIPE ends other tools.
 */
function output(name: 'stdout' | 'stderr'): NodeJS.WriteStream {
  const stream = process[name];
  if (!opened.has(stream)) {
    opened.add(stream);
    stream.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' ? process.exit(141) : undefined));
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
/** What the first Ctrl-C does, when the command can wind down on it (e.g. cancelling, draining). */
let interruptNote: string | undefined;
process.on('SIGINT', () => {
  if (interruptNote !== undefined && !interrupt.signal.aborted) {
    output('stderr').write(`gaxx: ${interruptNote} (press Ctrl-C again to quit)\n`);
    interrupt.abort();
    return;
  }
  process.exit(130);
});

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
  return process.exit(code);
}

// No top-level await: the bundle is a CommonJS file (loaded with its V8 code cache, see scripts/bundle.mjs).
void main();
