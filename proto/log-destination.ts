/**
 * Where the scheduler daemon's and the agent's JSON logs go: a descriptor (stderr), each line
 * written at once with writeSync, as pino.destination(fd) writes them, but a descriptor that
 * cannot take them does not stop the process. pino's destination (sonic-boom) retries a failed
 * write every 100 ms, blocking the event loop, for ever (its flush retries every error, not only
 * EAGAIN): with stderr on a full disk or /dev/full the daemon heard neither SIGTERM nor Ctrl-C
 * and had to be killed. Here a line that cannot be written is dropped:
 * - a descriptor that fails (ENOSPC, EIO, EBADF, a reader gone: EPIPE) is done: every later line
 *   is dropped without a write, and `failed` says why (the process goes on; its exit code can say it);
 * - a non-blocking one that is full (EAGAIN: a reader that falls behind) gets up to
 *   CONGESTED_WAIT_MS for each line, and while lines are being dropped, none: the process is
 *   never held longer than that by its logs.
 */
import { writeSync } from 'node:fs';

/** How long one line may wait for a full non-blocking descriptor before it is dropped. */
export const CONGESTED_WAIT_MS = 200;
const PAUSE_MS = 5;

export interface LogDestination {
  /** pino's destination interface: one serialised line (with its newline). */
  write(line: string): void;
  /** Why the descriptor was given up, once it failed. */
  readonly failed: NodeJS.ErrnoException | undefined;
  /** Lines not written (the descriptor failed, or stayed full). */
  readonly dropped: number;
}

let pauseCell: Int32Array | undefined;
function pause(ms: number): void {
  pauseCell ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(pauseCell, 0, 0, ms);
}

/**
 * A log destination on `fd`. `onFailed` hears the first failure (once). `write` stands for the
 * syscall (tests give it failures to make).
 */
export function fdLogDestination(
  fd: number,
  onFailed?: (e: NodeJS.ErrnoException) => void,
  write: (fd: number, buf: Buffer) => number = (d, b) => writeSync(d, b),
): LogDestination {
  let failed: NodeJS.ErrnoException | undefined;
  let dropped = 0;
  /** A line was dropped for EAGAIN: the next ones get one try until a write goes through. */
  let congested = false;
  return {
    get failed() {
      return failed;
    },
    get dropped() {
      return dropped;
    },
    write(line: string) {
      if (failed) {
        dropped += 1;
        return;
      }
      let buf = Buffer.from(line, 'utf8');
      const deadline = Date.now() + (congested ? 0 : CONGESTED_WAIT_MS);
      while (buf.length > 0) {
        try {
          buf = buf.subarray(write(fd, buf));
          congested = false;
        } catch (e) {
          const err = e as NodeJS.ErrnoException;
          if (err.code === 'EAGAIN' || err.code === 'EWOULDBLOCK') {
            if (Date.now() < deadline) {
              pause(PAUSE_MS);
              continue;
            }
            congested = true;
            dropped += 1;
            return;
          }
          failed = err;
          dropped += 1;
          onFailed?.(err);
          return;
        }
      }
    },
  };
}
