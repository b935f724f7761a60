/**
 * The framed protocol between the agent and its task launcher, over the launcher's stdin and
 * stdout pipes. One frame: u32 length of the rest, u8 type, u32 task number, u32 JSON length,
 * the JSON head, then raw bytes (stdin for SPAWN, output for OUT_*). Output of one tick is
 * batched into as few frames and writes as possible by the sender.
 */

import type { TaskRlimits } from './task-spawn.js';

export const FRAME = {
  /** agent -> launcher: head SpawnHead, body = fd 3 bytes (sandbox options) + stdin, split by head.fd3Bytes */
  SPAWN: 1,
  /** agent -> launcher: head { phase: 'term' | 'kill' } */
  SIGNAL: 2,
  /** launcher -> agent: head { pid, error? } */
  STARTED: 3,
  STDOUT: 4,
  STDERR: 5,
  /** launcher -> agent: head { code, signal, signalled, setupFailed? } (spawn-one.ts TaskEnd) */
  EXIT: 6,
  /** agent -> launcher (id 0): head WarmTemplate, the sandboxes to keep started from the agent's start on */
  WARM: 7,
} as const;

/**
 * Tasks that come further apart than this leave the refill to a quiet moment. A sandbox costs
 * several ms of CPU to set up, and a task's end is when its run is busiest: other tasks of the
 * run still go (on a machine that hosts several agents, those of other agents too), and their
 * results are on their way back. A pool with a sandbox left serves the next task meanwhile. It
 * is also the quiet moment after the agent's start at which the launcher first fills its pool
 * (warm-pool.ts prefill) and the agent builds Exec's message code (agent/index.ts).
 */
export const REFILL_IDLE_MS = 1000;

/**
 * How to start a task's process ahead of it (warm-pool.ts): the argv prefix that reads bwrap's
 * options on fd 3 (`bwrap --args 3 --`) and the mounts around the work dir, or none without a
 * sandbox; and the rlimits it starts with.
 */
export interface WarmTemplate {
  prefix: string[];
  rlimits?: TaskRlimits | undefined;
  /** The env of the prefix (bwrap): a PATH only; the task's own env goes on the pipe. */
  env: Record<string, string>;
  /** The sandbox's mounts before and after the work dir (sandbox.ts); none: no sandbox. */
  mounts?: { before: string[]; after: string[] } | undefined;
  /** The dir of the tasks' scratch dirs: a started sandbox's dir is made here and renamed to its task's. */
  tasksDir: string;
  /** How many to keep started. */
  count: number;
}

/** A task a started sandbox may run: its argv and env (the sandbox gets them on a pipe). */
export interface WarmTask {
  template: WarmTemplate;
  argv: string[];
  env: Record<string, string>;
}

/** The child's fd that holds its work dir, for a sandboxed start (SpawnHead.workRoot): after 0-2 and the options on 3. */
export const WORK_DIR_FD = 4;

/** What the launcher needs to start one task. */
export interface SpawnHead {
  file: string;
  args: string[];
  /** Resource limits the process starts with (set by the spawn, or by prlimit). */
  rlimits?: TaskRlimits | undefined;
  cwd: string;
  env: Record<string, string>;
  /** Bytes of the body that go to the child's fd 3 (bwrap's options); the rest is stdin. */
  fd3Bytes: number;
  /** The task's own argv[0] and PATH: a missing command is reported as a spawn error, not as a wrapper's exit. */
  probe: { argv0: string; path: string } | undefined;
  /** The task runs in a sandbox whose init reports a signal death as exit code 128+N. */
  sandboxed: boolean;
  /** Create the work dir (0700) before starting, off the agent's event loop. */
  mkdir: boolean;
  /**
   * Set for a sandboxed start: the work dir (`cwd`, which is `rel` under `root`) is opened by a
   * walk from `root` that follows no symlink (created as it goes when `mkdir`) and given to the
   * child as fd WORK_DIR_FD, which the sandbox binds (`--bind-fd`): a path the agent checked and
   * bwrap bound by name later could meanwhile lead elsewhere, through a symlink another task
   * planted in a directory it may write.
   */
  workDir?: { root: string; rel: string } | undefined;
  /**
   * Set for a sandboxed start whose bwrap writes its JSON status (`--json-status-fd`): the
   * child's fd for it, after all the others, which the launcher reads to tell a sandbox that
   * never ran the command from a command that failed (spawn-one.ts sandboxEnd).
   */
  statusFd?: number | undefined;
  /** Set when a sandbox started ahead may run the task instead (its work dir is a fresh scratch dir). */
  warm?: WarmTask | undefined;
}

export interface Frame {
  type: number;
  id: number;
  head: unknown;
  body: Buffer;
}

const EMPTY = Buffer.alloc(0);

/** Encodes one frame. */
export function encodeFrame(type: number, id: number, head: unknown, body: Buffer = EMPTY): Buffer {
  const json = head === undefined ? EMPTY : Buffer.from(JSON.stringify(head));
  const pre = Buffer.allocUnsafe(13);
  pre.writeUInt32BE(9 + json.length + body.length, 0);
  pre.writeUInt8(type, 4);
  pre.writeUInt32BE(id, 5);
  pre.writeUInt32BE(json.length, 9);
  return Buffer.concat([pre, json, body]);
}

/** Splits a byte stream into frames; push() returns every frame completed by the chunk. */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  push(chunk: Buffer): Frame[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < 4) return [];
    let buf = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    const frames: Frame[] = [];
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (buf.length - off - 4 < len) break;
      const type = buf.readUInt8(off + 4);
      const id = buf.readUInt32BE(off + 5);
      const jsonLen = buf.readUInt32BE(off + 9);
      const jsonEnd = off + 13 + jsonLen;
      const head = jsonLen > 0 ? (JSON.parse(buf.toString('utf8', off + 13, jsonEnd)) as unknown) : undefined;
      frames.push({ type, id, head, body: buf.subarray(jsonEnd, off + 4 + len) });
      off += 4 + len;
    }
    buf = buf.subarray(off);
    this.pending = buf.length > 0 ? [buf] : [];
    this.pendingBytes = buf.length;
    return frames;
  }
}
