/**
 * Sandboxes started ahead of their tasks, in the launcher. Setting up a bwrap sandbox (user, pid,
 * mount and ipc namespaces, a dozen mounts) costs several milliseconds, most of it waiting on the
 * kernel; a task that finds one ready does not wait for it.
 *
 * A warm sandbox is started exactly like a task's (same prefix, same mounts), but its work dir is
 * a fresh `<tasks>/+warm-<random>` and its command is dash, which prints one byte once the
 * sandbox is set up (ready) and then runs a script from fd 4 (INNER). A task with a scratch work dir
 * (`<tasks>/<taskId>`, not there yet) takes a ready one: the launcher renames the warm dir to the
 * task's work dir on the host (inside, every sandboxed scratch dir is `<tasks>/+task`, the task's
 * own and nothing else of the data dir: sandbox.ts scratchSeenAt), writes the task's env and argv as a script on
 * fd 4 and its stdin on fd 0, and dash execs the task. The pid, process group, signals and exit
 * code are those of a cold start. A task that finds none ready starts cold; the pool is filled a
 * quiet moment after the agent's start (prefill: REFILL_IDLE_MS after the agent sends its
 * template, unless a task came first; the start itself does not wait for it, so a fleet's first
 * task finds one ready) and topped up as each task ends, or once it has run a little while
 * (launcher-main.ts): at once while tasks come back to back or none is left, else once no task
 * has come for REFILL_IDLE_MS (refillTiming). Only the newest template is
 * kept warm (an older one is ended). Without a sandbox (--unsafe-no-isolation) nothing is started
 * ahead where tasks start through the native spawn (task-spawn.ts): a cold start is then one exec,
 * with the rlimits set in the child, and a warm dash would only add its own start (at each refill)
 * to every task: Exec `true` took 1.16-1.32x as long with it, at 1, 8 and 32 in flight. Where tasks
 * fork (GAXX_SPAWN=node), the rlimits cost a prlimit(1) exec on the task's path, and dash waits
 * with them already set instead.
 *
 * Only dash runs the script: it exports nothing of its own (bash adds SHLVL, PWD and _) and has no
 * read-only variables a task's env could trip over.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeDirs, removeTree } from '../../proto/light.js';
import { REFILL_IDLE_MS, type WarmTask, type WarmTemplate } from './launcher-protocol.js';
import { processStartTicks } from '../../proto/light.js';
import { encodeArgs, mountOptions, scratchSeenAt } from './sandbox.js';
import { watchChild, type SpawnEvents, type SpawnedProcess } from './spawn-one.js';
import { spawnMethod, spawnTask, type TaskChild } from './task-spawn.js';

/** Warm dirs are named with this prefix in the tasks dir: `+` is not allowed in a task id, so no scratch dir is ever one. */
export const WARM_PREFIX = '+warm-';
const DASH = ['/bin/dash', '/usr/bin/dash'].find((p) => existsSync(p));
const READY = 0x52; // 'R'
/**
 * Runs the script that comes on fd 4 (fd 3 held bwrap's options). Where fd 4 is a pipe (the
 * native spawn's), dash sources it (`.`), reading it in one call; a socket (child_process's
 * stdio, GAXX_SPAWN=node) cannot be opened that way, so there dash reads it to its end with
 * `read`, one byte per call (~250 calls for a task's usual env), and evals it.
 */
export const INNER = `printf R; if [ -p /proc/self/fd/4 ]; then . /proc/self/fd/4; else s=; while IFS= read -r l <&4; do s="$s$l\n"; done; s="$s$l"; eval "$s"; fi`;
/** Longer scripts (huge env values) start cold: where dash reads its script with `read`, one byte per call. */
const MAX_SCRIPT_BYTES = 16 * 1024;
/** Sandboxes that die before they are ready, in a row, before the pool stops trying for a while. */
const MAX_FAILURES = 3;
/**
 * How long a pool that stopped trying waits before it tries one sandbox again, doubling while
 * that one fails too: what failed may pass (a full disk freed, a process limit no longer met), and
 * without a new try the agent's tasks would start cold for the rest of its life.
 */
export const WARM_RETRY_MS = { first: 30_000, max: 15 * 60_000 };
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * When the pool is topped up after a task: 'now' when no sandbox is left or the last two tasks
 * came less than REFILL_IDLE_MS apart (the next one is likely as close), else 'idle' (once no
 * task has come for REFILL_IDLE_MS).
 */
export function refillTiming(left: number, arrivalGapMs: number): 'now' | 'idle' {
  return left === 0 || arrivalGapMs < REFILL_IDLE_MS ? 'now' : 'idle';
}

function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The script dash runs for a task: fds 3 and 4 closed, exactly the task's env (nothing of
 * dash's), then exec argv. It is one `{ ... }` block: dash runs a block only once it has read
 * all of it, so a script cut short (its writer gone mid-way) is a syntax error and runs nothing,
 * not the first words of a command.
 */
export function taskScript(argv: readonly string[], env: Readonly<Record<string, string>>): string | undefined {
  const names = Object.keys(env);
  if (argv.length === 0 || names.some((n) => !ENV_NAME.test(n))) return undefined;
  const lines = [
    '{',
    'exec 3<&- 4<&-',
    'unset PWD OLDPWD',
    ...names.map((n) => `export ${n}=${quote(env[n] as string)}`),
    `exec ${argv.map(quote).join(' ')}`,
    '}',
    '',
  ];
  return lines.join('\n');
}

/** Whether tasks of template `t` are started ahead at all: sandboxed, or limits alone where tasks fork (see above). */
export function startsAhead(t: WarmTemplate): boolean {
  return t.mounts !== undefined || !spawnMethod().native;
}

/** Removes a warm dir off the event loop; one that cannot go stays (the launcher has no one to tell). */
function removeDir(dir: string): void {
  removeTree(dir).catch(() => undefined);
}

interface Warm {
  child: TaskChild;
  pid: number;
  dir: string;
  ready: boolean;
  /** Stops the pool's own listeners (the task's take over). */
  release(): void;
}

/** The launcher's warm sandboxes (one template at a time). */
export class WarmPools {
  private key = '';
  private template: WarmTemplate | undefined;
  private idle: Warm[] = [];
  private failures = 0;
  /** The wait before the next try once the pool stopped trying, and its timer while it runs. */
  private retryMs: number;
  private retry: NodeJS.Timeout | undefined;
  /** Stopped trying (said once): told again only when a sandbox is ready after that. */
  private stopped = false;
  private readonly swept = new Set<string>();
  /** When the last two tasks that may use the pool came (performance.now()). */
  private lastArrival = -Infinity;
  private arrivalGap = Infinity;
  private idleRefill: NodeJS.Timeout | undefined;

  /**
   * `say`: told when the pool stops trying (why) and when a sandbox is ready again after that.
   * `retryMs`: the first wait before a new try (WARM_RETRY_MS.first; tests shorten it).
   */
  constructor(
    private readonly say: (what: string) => void = () => undefined,
    private readonly retryFirstMs = WARM_RETRY_MS.first,
  ) {
    this.retryMs = retryFirstMs;
  }

  /** Makes `t` the template kept warm; the sandboxes of another template are ended. */
  private use(t: WarmTemplate): void {
    const key = JSON.stringify(t);
    if (key === this.key) return;
    this.drain();
    this.key = key;
    this.template = t;
    this.failures = 0;
    this.retryMs = this.retryFirstMs;
    this.stopped = false;
  }

  /**
   * Runs `task` in a ready sandbox with its work dir renamed to `cwd`; undefined (nothing done)
   * when none is ready or the task cannot go warm, and the caller starts it cold. The task's
   * template becomes the one kept warm (topUp fills it).
   */
  take(task: WarmTask, cwd: string, stdin: Buffer, ev: SpawnEvents): SpawnedProcess | undefined {
    const now = performance.now();
    this.arrivalGap = now - this.lastArrival;
    this.lastArrival = now;
    // A task came: the quiet moment a refill waited for is not here yet (its end decides anew).
    clearTimeout(this.idleRefill);
    this.idleRefill = undefined;
    this.use(task.template);
    if (dirname(cwd) !== task.template.tasksDir) return undefined;
    const script = taskScript(task.argv, task.env);
    if (script === undefined || Buffer.byteLength(script) > MAX_SCRIPT_BYTES || existsSync(cwd)) return undefined;
    const i = this.idle.findIndex((w) => w.ready);
    if (i < 0) return undefined;
    const w = this.idle.splice(i, 1)[0] as Warm;
    w.release();
    try {
      renameSync(w.dir, cwd);
    } catch {
      this.end(w);
      return undefined;
    }
    ev.started(w.pid, undefined, processStartTicks(w.pid), true);
    const fd4 = w.child.stdio[4] as NodeJS.WritableStream & { on(e: 'error', f: () => void): void };
    fd4.on('error', () => undefined);
    fd4.end(script);
    return watchChild(w.child, w.pid, task.template.mounts !== undefined, stdin, ev);
  }

  /**
   * The agent's start: `t` (its scratch tasks' template) is kept warm from now on, filled once
   * no task has come for REFILL_IDLE_MS; a task that comes first finds none, starts cold and
   * fills the pool as ever. The start does not wait for it, and on a machine that starts many
   * agents each fills its pool a moment after its own start, not during the others'.
   */
  prefill(t: WarmTemplate): void {
    this.use(t);
    if (this.idle.length > 0 || this.idleRefill) return;
    this.idleRefill = setTimeout(() => {
      this.idleRefill = undefined;
      this.topUp();
    }, REFILL_IDLE_MS);
  }

  /** After a task that may use the pool: topUp now or at a quiet moment (refillTiming). */
  refill(): void {
    if (refillTiming(this.idle.length, this.arrivalGap) === 'now') {
      setImmediate(() => this.topUp());
      return;
    }
    clearTimeout(this.idleRefill);
    this.idleRefill = setTimeout(() => {
      this.idleRefill = undefined;
      this.topUp();
    }, REFILL_IDLE_MS);
  }

  /** Starts sandboxes until the template's count are there (none once they keep failing). */
  topUp(): void {
    const t = this.template;
    if (!t || !DASH || this.failures >= MAX_FAILURES) return;
    while (this.idle.length < t.count) if (!this.startOne(t, DASH)) return;
  }

  /** Ends every idle sandbox and removes its dir (at exit, or when the template changed). */
  drain(): void {
    clearTimeout(this.idleRefill);
    this.idleRefill = undefined;
    clearTimeout(this.retry);
    this.retry = undefined;
    for (const w of this.idle.splice(0)) this.end(w);
  }

  private end(w: Warm): void {
    w.release();
    try {
      process.kill(-w.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    removeDir(w.dir);
  }

  /** Warm dirs left by a launcher that was killed: removed once per tasks dir. */
  private sweep(tasksDir: string): void {
    if (this.swept.has(tasksDir)) return;
    this.swept.add(tasksDir);
    makeDirs(tasksDir, { mode: 0o700 });
    for (const name of readdirSync(tasksDir)) if (name.startsWith(WARM_PREFIX)) removeDir(join(tasksDir, name));
  }

  private startOne(t: WarmTemplate, shell: string): boolean {
    let dir: string;
    try {
      this.sweep(t.tasksDir);
      dir = join(t.tasksDir, `${WARM_PREFIX}${randomBytes(8).toString('hex')}`);
      mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      // The errno (makeDirs' FILE_ACCESS carries it in details).
      const errno = (e as { details?: { errno?: string } }).details?.errno ?? (e as NodeJS.ErrnoException).code;
      this.fail(`cannot make a warm work dir in ${t.tasksDir}: ${errno ?? String(e)}`);
      return false;
    }
    const [file, ...args] = [...t.prefix, shell, '-c', INNER];
    const child = spawnTask(file as string, args, { cwd: dir, env: t.env, fds: 5, rlimits: t.rlimits });
    child.on('error', () => undefined);
    for (const s of child.stdio) (s as NodeJS.EventEmitter | null)?.on('error', () => undefined);
    if (!child.pid) {
      removeDir(dir);
      this.fail(`cannot start ${file}`);
      return false;
    }
    const w: Warm = { child, pid: child.pid, dir, ready: false, release: () => undefined };
    const onData = (d: Buffer) => {
      if (!w.ready && d[0] === READY) {
        w.ready = true;
        this.failures = 0;
        this.retryMs = this.retryFirstMs;
        if (this.stopped) {
          this.stopped = false;
          this.say('a warm sandbox started again: tasks go warm from now on');
          setImmediate(() => this.topUp());
        }
      }
    };
    const onExit = () => {
      const at = this.idle.indexOf(w);
      if (at >= 0) this.idle.splice(at, 1);
      removeDir(dir);
      if (!w.ready) this.fail(`a warm sandbox ended before it was ready (${file})`);
    };
    child.stdout?.on('data', onData);
    child.on('exit', onExit);
    w.release = () => {
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
    };
    const fd3 = child.stdio[3] as NodeJS.WritableStream;
    // Seen inside where every sandboxed scratch dir is (the task's, once renamed to it here).
    if (t.mounts) fd3.end(encodeArgs(mountOptions(t.mounts, dir, undefined, scratchSeenAt(dirname(dir)))));
    else fd3.end();
    this.idle.push(w);
    return true;
  }

  private fail(why: string): void {
    this.failures += 1;
    if (this.failures < MAX_FAILURES) return;
    // Stopped trying: one sandbox again after a wait (doubling while it fails), not never again.
    const wait = this.retryMs;
    this.retryMs = Math.min(wait * 2, WARM_RETRY_MS.max);
    if (!this.stopped) this.say(`${why}; tasks start cold, a warm sandbox is tried again in ${Math.round(wait / 1000)} s`);
    this.stopped = true;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      // One try: the rest are started once it is ready (above), another wait when it fails.
      this.failures = MAX_FAILURES - 1;
      const t = this.template;
      if (t && DASH && this.idle.length < t.count) this.startOne(t, DASH);
    }, wait);
    this.retry.unref();
  }
}
