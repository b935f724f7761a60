/**
 * Task isolation: every task runs inside bubblewrap (bwrap) with unprivileged user, PID, mount,
 * IPC and cgroup namespaces. Inside, / and /dev are read-only, the agent's cert dir, audit log
 * dir and state dir are empty read-only tmpfs mounts, /proc is the namespace's own (the agent's
 * pid, environ and memory are not there to name), /tmp and /dev/shm are private tmpfs mounts
 * of a bounded size (memory no rlimit counts), and only the task's work dir is writable besides.
 * The namespace's init (bwrap's pid 1) takes every descendant with it when the task's main
 * process ends, and `--die-with-parent` ends the namespace when the launcher (and so the agent)
 * goes. The network is shared on purpose: tasks probe networks.
 *
 * Why bwrap and not util-linux `unshare`: unshare leaves the task root in its user namespace,
 * with the capabilities to unmount the tmpfs that hides the agent's files; bwrap drops every
 * capability, sets no_new_privs and can forbid nested user namespaces. See
 * docs/agent-hardening.md.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** How tasks are isolated on this host, and why (logged and audited at start). */
export type Sandbox =
  | {
      kind: 'bwrap';
      bwrap: string;
      disableUserns: boolean;
      detail: string;
      /**
       * bwrap binds a directory by descriptor (--bind-fd, 0.8): work dirs are bound as the
       * launcher opened them. Without it, only scratch dirs (whose parents no task can write)
       * are work dirs: a named one is refused (exec-request.ts).
       */
      bindFd: boolean;
      /** bwrap sizes a tmpfs (--size, 0.7): a task's /tmp is held to its memory limit. */
      tmpSize: boolean;
      /**
       * bwrap writes its status as JSON (--json-status-fd, 0.3.2), with the command's exit code
       * only once it ran the command: a sandbox that could not be set up is told from a command
       * that failed (spawn-one.ts sandboxEnd). Absent: not known, as before.
       */
      jsonStatus?: boolean;
    }
  | { kind: 'none'; detail: string; /** Why isolation is missing: what to install or enable. */ remedy: string };

/** What a task must not see or change, and where it may write. */
export interface SandboxPaths {
  certsDir: string;
  auditDir: string;
  stateDir: string;
  /** More dirs to hide (e.g. the agent user's /run/user/UID with its service manager's socket). */
  hide?: string[];
  /** Dirs tasks may write besides their work dir (--task-writable); the hidden dirs stay hidden inside them. */
  writable?: string[];
  /**
   * The agent's data dir: a task sees none of it but its own work dir (bound there), so neither
   * another task's scratch dir nor files uploaded elsewhere. Covered by an empty tmpfs, unless it
   * lies under /tmp (`dataDirUnderTmp`: a local fleet's, a test's), which the task's private /tmp
   * replaces already.
   */
  dataDir?: string;
  dataDirUnderTmp?: boolean;
  /**
   * The most a task's private /tmp holds, in bytes: the task's memory limit, since a tmpfs is
   * memory no rlimit of the task counts (0 or absent: the kernel's default, half of RAM).
   */
  tmpBytes?: number;
}

const BASE_OPTIONS = ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-cgroup-try', '--die-with-parent', '--new-session'];

function probe(bwrap: string, extra: string[]): Promise<string | undefined> {
  const dev = ['--dev', '/dev', '--tmpfs', '/dev/shm', '--remount-ro', '/dev'];
  const args = [...BASE_OPTIONS, ...extra, '--ro-bind', '/', '/', ...dev, '--proc', '/proc', '--tmpfs', '/tmp', '--', '/bin/true'];
  return new Promise((resolve) => {
    execFile(bwrap, args, { timeout: 5000, env: { PATH: '/usr/bin:/bin' } }, (err, _o, stderr) =>
      resolve(err ? stderr.trim().split('\n')[0] || err.message : undefined),
    );
  });
}

/** Which of the options tasks use where there are that this bwrap has, from its --help. */
function features(bwrap: string): Promise<{ bindFd: boolean; tmpSize: boolean; jsonStatus: boolean }> {
  return new Promise((resolve) => {
    execFile(bwrap, ['--help'], { timeout: 5000, env: { PATH: '/usr/bin:/bin' } }, (_err, out, errOut) => {
      const has = (o: string) => new RegExp(`^\\s*${o}\\s`, 'm').test(`${out}\n${errOut}`);
      resolve({ bindFd: has('--bind-fd'), tmpSize: has('--size'), jsonStatus: has('--json-status-fd') });
    });
  });
}

/** What an older bwrap's sandbox lacks, for its detail. */
function lacking(f: { bindFd: boolean; tmpSize: boolean }): string {
  const gaps = [
    ...(f.bindFd ? [] : ['no --bind-fd: named work dirs refused']),
    ...(f.tmpSize ? [] : ['no --size: /tmp and /dev/shm not held to the memory limit']),
  ];
  return gaps.length ? ` (bubblewrap older than 0.8, ${gaps.join('; ')})` : '';
}

/** Finds out whether this host, as this user, can run tasks in a bwrap sandbox. */
export async function detectSandbox(bwrapPath = '/usr/bin/bwrap'): Promise<Sandbox> {
  if (!existsSync(bwrapPath)) {
    return { kind: 'none', detail: `${bwrapPath} not found`, remedy: 'install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)' };
  }
  const f = await features(bwrapPath);
  if ((await probe(bwrapPath, ['--disable-userns'])) === undefined) {
    const detail = `bubblewrap: user, pid, mount, ipc namespaces; nested user namespaces disabled${lacking(f)}`;
    return { kind: 'bwrap', bwrap: bwrapPath, disableUserns: true, detail, ...f };
  }
  const err = await probe(bwrapPath, []);
  if (err === undefined)
    return { kind: 'bwrap', bwrap: bwrapPath, disableUserns: false, detail: `bubblewrap: user, pid, mount, ipc namespaces${lacking(f)}`, ...f };
  return {
    kind: 'none',
    detail: `bubblewrap cannot create namespaces as this user (${err})`,
    remedy:
      'enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0; on Ubuntu 24.04+ also kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile for bwrap)',
  };
}

/** How long a directory's existence is taken as known (sandboxMounts runs once per task). */
const EXISTS_TTL_MS = 1000;
const existence = new Map<string, { at: number; exists: boolean }>();

/** existsSync, remembered for a second: these are the agent's own, long-lived directories. */
function dirExists(dir: string, now = Date.now()): boolean {
  const known = existence.get(dir);
  if (known && now - known.at < EXISTS_TTL_MS) return known.exists;
  const exists = existsSync(dir);
  if (existence.size > 256) existence.clear();
  existence.set(dir, { at: now, exists });
  return exists;
}

/** The mounts around a task's work dir: `before` it (root, /dev, /proc, /tmp, writable dirs) and `after` it (the hidden dirs). */
export interface SandboxMounts {
  before: string[];
  after: string[];
}

/**
 * The most a task's /dev/shm holds (POSIX shared memory, semaphores), as container runtimes
 * give it by default; less when the task's memory limit is less.
 */
export const SHM_BYTES = 64 * 1024 * 1024;

/** A sandbox's mounts, for any work dir: the hidden dirs come last, so they stay hidden inside writable dirs. */
export function sandboxMounts(s: Extract<Sandbox, { kind: 'bwrap' }>, paths: SandboxPaths): SandboxMounts {
  const before = [...BASE_OPTIONS];
  if (s.disableUserns) before.push('--disable-userns');
  before.push('--ro-bind', '/', '/', '--dev', '/dev');
  // bwrap's /dev is a tmpfs the task could fill, /dev/shm with it: memory no rlimit counts. /dev
  // is made read-only (its device nodes still open for writing), /dev/shm a tmpfs of its own,
  // held like /tmp (SHM_BYTES at most).
  const shmBytes = paths.tmpBytes ? Math.min(paths.tmpBytes, SHM_BYTES) : SHM_BYTES;
  if (s.tmpSize) before.push('--size', String(shmBytes));
  before.push('--tmpfs', '/dev/shm', '--remount-ro', '/dev', '--proc', '/proc');
  if (paths.tmpBytes && s.tmpSize) before.push('--size', String(paths.tmpBytes));
  before.push('--tmpfs', '/tmp');
  // Read-only once the work dir is bound in it (`after`): no task writes there, so it holds
  // nothing a task could grow beside its /tmp (only the work dir's own mount stays writable).
  const data = paths.dataDir !== undefined && !paths.dataDirUnderTmp && dirExists(paths.dataDir) ? paths.dataDir : undefined;
  if (data) before.push('--tmpfs', data);
  for (const dir of paths.writable ?? []) if (dirExists(dir)) before.push('--bind', dir, dir);
  const after: string[] = data ? ['--remount-ro', data] : [];
  for (const dir of [paths.certsDir, paths.auditDir, paths.stateDir, ...(paths.hide ?? [])]) {
    if (dirExists(dir)) after.push('--tmpfs', dir, '--remount-ro', dir);
  }
  return { before, after };
}

/**
 * Where a task's scratch dir (`<tasks>/<taskId>`, or a warm sandbox's `<tasks>/+warm-...` that
 * becomes it) is seen inside its sandbox: one name for all, since a warm sandbox is set up before
 * its task's id is known, and the host's tasks dir (where a rename would show) is hidden. `+` is
 * in no task id.
 */
export const SCRATCH_SEEN_NAME = '+task';

/** The path a scratch dir in `tasksDir` has inside its sandbox. */
export function scratchSeenAt(tasksDir: string): string {
  return join(tasksDir, SCRATCH_SEEN_NAME);
}

/**
 * The options that mount `m` around the writable work dir `cwd`, seen inside at `seenAt`, start
 * there and clear the env. With `cwdFd`, the work dir bound is the directory open on that fd of
 * bwrap's (`--bind-fd`), not whatever the path leads to when bwrap gets there.
 */
export function mountOptions(m: SandboxMounts, cwd: string, cwdFd?: number, seenAt = cwd): string[] {
  const bind = cwdFd === undefined ? ['--bind', cwd, seenAt] : ['--bind-fd', String(cwdFd), seenAt];
  return [...m.before, ...bind, ...m.after, '--chdir', seenAt, '--clearenv'];
}

/**
 * The bwrap options for one task, given to bwrap on a pipe (`--args 3`) so the task's env values
 * never appear on a command line other users can read. The env is set inside (`--clearenv`,
 * `--setenv`), so nothing in it reaches bwrap or prlimit themselves.
 */
export function sandboxOptions(mounts: SandboxMounts, cwd: string, env: Record<string, string>, cwdFd?: number, seenAt = cwd): string[] {
  const o = mountOptions(mounts, cwd, cwdFd, seenAt);
  for (const [k, v] of Object.entries(env)) o.push('--setenv', k, v);
  return o;
}

/** The argv prefix that runs a command with its options on fd 3 (see sandboxOptions). */
export function sandboxArgv(s: Extract<Sandbox, { kind: 'bwrap' }>, argv: string[]): string[] {
  return [s.bwrap, '--args', '3', '--', ...argv];
}

/** NUL-separated, as `bwrap --args` reads them. */
export function encodeArgs(options: string[]): Buffer {
  return Buffer.from(options.map((a) => `${a}\0`).join(''));
}
