#!/usr/bin/env node
/**
 * The `gaxx` executable. The only CLI module that touches the process: it hands argv, env and
 * the standard streams to runCli, turns the first Ctrl-C into a cancellation for commands that
 * can cancel remote work, and exits with the code runCli returns.
 */
import { homedir, userInfo } from 'node:os';
import { isatty } from 'node:tty';
import { readFileIfExists } from './settings.js';
import { runCli } from './dispatch.js';

function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? '';
  }
}

// A reader that went away (`gaxx run ... | head`) ends us quietly, as SIGPIPE ends other tools.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' ? process.exit(141) : undefined));
}

const interrupt = new AbortController();
let interruptible = false;
process.on('SIGINT', () => {
  if (interruptible && !interrupt.signal.aborted) {
    process.stderr.write('gaxx: cancelling (press Ctrl-C again to quit)\n');
    interrupt.abort();
    return;
  }
  process.exit(130);
});

/** Runs the command line, flushes what is buffered and exits with runCli's code. */
async function main(): Promise<never> {
  const code = await runCli({
    argv: process.argv.slice(2),
    env: process.env,
    io: {
      stdout: process.stdout,
      stderr: process.stderr,
      stderrIsTty: process.stderr.isTTY === true,
      // Lazy: process.stdin is created only for a command that reads it.
      get stdin() {
        return process.stdin;
      },
      stdinIsTty: isatty(0),
      colour: process.stdout.isTTY === true && !process.env.NO_COLOR,
    },
    readFile: readFileIfExists,
    homeDir: homedir(),
    userName: userName(),
    cwd: process.cwd(),
    signal: interrupt.signal,
    onInterruptible: () => {
      interruptible = true;
    },
  });
  // Flush what is buffered before exiting; open handles (e.g. a gRPC channel) must not keep us alive.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  await new Promise<void>((resolve) => process.stderr.write('', () => resolve()));
  return process.exit(code);
}

// No top-level await: the bundle is a CommonJS file (loaded with its V8 code cache, see scripts/bundle.mjs).
void main();
