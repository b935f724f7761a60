/**
 * The task registry's journal: what lets exactly-once survive an agent restart. One JSON line
 * per task taken (`s` with pid 0: id and spec key, written before its spawn is asked for), per
 * start (`s` again: its pid and the process's start time) and per finish (`x`: the exit and the
 * tail of the output), appended to `<state-dir>/tasks.jsonl` (0600; the state dir is outside the
 * data dir, so PutFile/GetFile cannot reach it). The first line is written ahead: once the spawn
 * is asked for, the launcher may start the task (and it may do its work) before the agent hears
 * of its pid, so an agent that died in between must still know it took the task.
 *
 * On start the agent reads it back: a finished task is replayed as before the restart; a task
 * that was still running (or being started) when the agent died is "lost in a restart":
 * whatever is left of its process group is killed (matched by pid AND start time, so a reused
 * pid is never touched), and an Exec for it replays an Exit with reason `lost_in_restart`
 * instead of running it again.
 *
 * Bounded: the file is rewritten with only the entries the registry keeps (TTL, count) at start
 * and whenever it has grown to three times that; a finished task keeps at most
 * `OUTPUT_TAIL_BYTES` of its output here (the in-memory buffer may hold more).
 */
import { makeDirs, processStartTicks } from '../../proto/index.js';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../certs/index.js';
import { appendWhole } from '../files/append-whole.js';
import type { TaskExit } from './task.js';

/** Output kept per finished task in the journal. */
export const OUTPUT_TAIL_BYTES = 16 * 1024;
export { LOST_IN_RESTART } from '../../proto/index.js';

/** One task as the journal remembers it. */
export interface JournalEntry {
  id: string;
  /** What the task was started for (Task.specKey: the digest of its signed spec). */
  specKey: string;
  /** 0: none known (written ahead of its spawn, or its command could not be run). */
  pid: number;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); 0 unknown. */
  startTicks: number;
  startedAt: number;
  /** Signed work: its signature's expiry, until which its id stays spent (Task.onceUntil). */
  onceUntil?: number | undefined;
  exit?: TaskExit;
  finishedAt?: number;
  output?: Array<{ stream: 'stdout' | 'stderr'; data: Buffer }>;
  dropped?: boolean;
}

type Line =
  | { t: 's'; id: string; k: string; pid: number; st: number; at: number; u?: number }
  | { t: 'x'; id: string; exit: TaskExit; at: number; out: Array<[0 | 1, string]>; dropped: boolean }
  /** A forgotten signed task's id, spent until `u` (TaskRegistry.spentUntil). */
  | { t: 'p'; id: string; u: number }
  /** A task taken that never ran its command (the agent could not set it up): no entry. */
  | { t: 'u'; id: string };

/** Forgotten signed tasks' ids and until when each is spent. */
export type SpentIds = Iterable<[string, number]>;

/** The pids in process group `pgid` (scans /proc; empty when none or not Linux). */
function groupMembers(pgid: number): number[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
  return pids.map(Number).filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid;
    } catch {
      return false;
    }
  });
}

/**
 * Kills what is left of a lost task's process group. The group is ours when its leader still has
 * the recorded start time, or when the leader is gone but the group lives on (Linux does not
 * hand out a pid that is still some group's id); a pid reused by an unrelated leader is left alone.
 */
export function sweepLostGroup(e: Pick<JournalEntry, 'pid' | 'startTicks'>): boolean {
  if (e.pid <= 1) return false;
  const ticks = processStartTicks(e.pid);
  if (ticks !== 0 && ticks !== e.startTicks) return false;
  if (ticks === 0 && groupMembers(e.pid).length === 0) return false;
  try {
    process.kill(-e.pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/** The file, beside the journal, holding its identity (journalIdentity). */
const IDENTITY_FILE = 'journal-id';
const IDENTITY = /^[0-9a-f]{32}$/;

/** A fresh random journal identity (also that of an agent with no journal: each process is a new agent). */
export function newJournalId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * The journal's identity (InfoResponse.journal_id), made at its first open and kept in `<dir>`:
 * an agent restarted with this state dir keeps it (it can still say what became of the tasks it
 * was sent), a new agent (another state dir, e.g. a spawn --fill at the same address) has
 * another. One unreadable is made anew: a journal that cannot be named is taken for a new one,
 * so a scheduler never takes it for the agent it sent work to.
 */
function journalIdentity(dir: string): string {
  const path = join(dir, IDENTITY_FILE);
  try {
    const id = readFileSync(path, 'utf8').trim();
    if (IDENTITY.test(id)) return id;
  } catch {
    // None yet (a new state dir): made below.
  }
  const id = newJournalId();
  writeFileAtomic(path, `${id}\n`, 0o600);
  return id;
}

/** What the journal held at open, and what of it could not be read. */
export interface JournalContents {
  entries: JournalEntry[];
  spent: Array<[string, number]>;
  /** Lines skipped as unreadable (a line torn by a crash or a full disk), and a torn end cut off. */
  skipped: number;
}

/**
 * The append-only journal of one agent's tasks. A line is appended whole or not at all
 * (appendWhole). A failed append (a full disk) is not dropped silently: `failure` says why, and
 * the journal is behind the registry until a rewrite (retry by the registry, with what it holds
 * now) succeeds; the agent refuses new work meanwhile (observe/disk-guard.ts).
 */
export class TaskJournal {
  private fd: number;
  private size: number;
  private lines = 0;
  readonly path: string;
  private failed: NodeJS.ErrnoException | undefined;

  private constructor(
    dir: string,
    private readonly onError: (e: NodeJS.ErrnoException) => void,
  ) {
    this.path = join(dir, 'tasks.jsonl');
    this.fd = openSync(this.path, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
  }

  /**
   * Opens `<dir>/tasks.jsonl` (creating dir 0700), returning the journal and what it remembers.
   * `onError`: an append or rewrite failed, told once per failing spell.
   */
  static open(dir: string, onError: (e: NodeJS.ErrnoException) => void = () => undefined): { journal: TaskJournal; id: string } & JournalContents {
    makeDirs(dir, { mode: 0o700 });
    // What is read back is written anew at once (TaskRegistry.recover): a torn end does not stay.
    const contents = readEntries(join(dir, 'tasks.jsonl'));
    return { journal: new TaskJournal(dir, onError), id: journalIdentity(dir), ...contents };
  }

  /** Why the last append or rewrite failed; undefined while the journal is whole. */
  get failure(): NodeJS.ErrnoException | undefined {
    return this.failed;
  }

  /**
   * The task is taken and its spawn about to be asked for: written ahead of it, with no process
   * yet (pid 0), so that a restart finds it lost rather than never sent. One append, not synced,
   * as every line here. False when it could not be written (`failure` says why): then the task
   * must not start.
   */
  starting(e: Pick<JournalEntry, 'id' | 'specKey' | 'startedAt' | 'onceUntil'>): boolean {
    this.append(startLine({ ...e, pid: 0, startTicks: 0 }));
    return this.failed === undefined;
  }

  /** Its process started: the same task's line again, with the pid and start time a restart sweeps by. */
  started(e: Pick<JournalEntry, 'id' | 'specKey' | 'pid' | 'startTicks' | 'startedAt' | 'onceUntil'>): void {
    this.append(startLine(e));
  }

  /** The task written ahead never ran its command (TaskRegistry: refused): it is read back as never there. */
  unstarted(id: string): void {
    this.append({ t: 'u', id });
  }

  finished(id: string, exit: TaskExit, output: JournalEntry['output'] = [], dropped = false): void {
    const { chunks, cut } = tail(output, OUTPUT_TAIL_BYTES);
    this.append({
      t: 'x',
      id,
      exit,
      at: Date.now(),
      out: chunks.map((c) => [c.stream === 'stdout' ? 0 : 1, c.data.toString('base64')]),
      dropped: dropped || cut,
    });
  }

  /** Whether the file has grown to `factor` times the entries kept (time to rewrite it). */
  wantsCompaction(kept: number, factor = 3): boolean {
    return this.lines > Math.max(1000, factor * kept * 2);
  }

  /**
   * Rewrites the file with exactly `entries` and the `spent` ids not yet expired (atomic and
   * durable: a crash leaves the old or the new journal). Throws when it cannot (the old file stays).
   */
  rewrite(entries: JournalEntry[], spent: SpentIds = [], now = Date.now()): void {
    const lines: Line[] = [];
    for (const [id, u] of spent) if (u > now) lines.push({ t: 'p', id, u });
    for (const e of entries) lines.push(...encode(e));
    const text = lines.map((l) => `${JSON.stringify(l)}\n`).join('');
    writeFileAtomic(this.path, text, 0o600);
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a', 0o600);
    this.size = Buffer.byteLength(text);
    this.lines = lines.length;
    this.failed = undefined;
  }

  /** rewrite(), a failure kept in `failure` instead of thrown; true when it was written. */
  tryRewrite(entries: JournalEntry[], spent: SpentIds = []): boolean {
    try {
      this.rewrite(entries, spent);
      return true;
    } catch (e) {
      this.fail(e);
      return false;
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  private fail(e: unknown): void {
    const first = this.failed === undefined;
    this.failed = e as NodeJS.ErrnoException;
    if (first) this.onError(this.failed);
  }

  private append(line: Line): void {
    // Behind already: only a rewrite (of all the registry holds) makes it whole again.
    if (this.failed) return;
    const buf = Buffer.from(`${JSON.stringify(line)}\n`);
    try {
      appendWhole(this.fd, buf, this.size);
      this.size += buf.length;
      this.lines++;
    } catch (e) {
      this.fail(Object.assign(e as NodeJS.ErrnoException, { path: (e as NodeJS.ErrnoException).path ?? this.path }));
    }
  }
}

function tail(output: NonNullable<JournalEntry['output']>, max: number): { chunks: NonNullable<JournalEntry['output']>; cut: boolean } {
  const chunks: NonNullable<JournalEntry['output']> = [];
  let n = 0;
  for (let i = output.length - 1; i >= 0 && n < max; i--) {
    const c = output[i] as { stream: 'stdout' | 'stderr'; data: Buffer };
    const part = c.data.length > max - n ? c.data.subarray(c.data.length - (max - n)) : c.data;
    chunks.unshift({ stream: c.stream, data: part });
    n += part.length;
  }
  return { chunks, cut: output.reduce((s, c) => s + c.data.length, 0) > n };
}

function startLine(e: Pick<JournalEntry, 'id' | 'specKey' | 'pid' | 'startTicks' | 'startedAt' | 'onceUntil'>): Line {
  return { t: 's', id: e.id, k: e.specKey, pid: e.pid, st: e.startTicks, at: e.startedAt, ...(e.onceUntil !== undefined ? { u: e.onceUntil } : {}) };
}

function encode(e: JournalEntry): Line[] {
  const s = startLine(e);
  if (!e.exit) return [s];
  const out = (e.output ?? []).map((c): [0 | 1, string] => [c.stream === 'stdout' ? 0 : 1, c.data.toString('base64')]);
  return [s, { t: 'x', id: e.id, exit: e.exit, at: e.finishedAt ?? Date.now(), out, dropped: e.dropped ?? false }];
}

/**
 * Reads the journal. A line that does not parse (torn by a crash, or by a full disk before lines
 * were appended whole), or an end without its newline, is skipped and counted.
 */
function readEntries(path: string): JournalContents {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return { entries: [], spent: [], skipped: 0 };
  }
  const end = bytes.lastIndexOf(0x0a) + 1;
  const text = bytes.subarray(0, end).toString('utf8');
  const byId = new Map<string, JournalEntry>();
  const spent: Array<[string, number]> = [];
  let skipped = end < bytes.length ? 1 : 0;
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    let l: Line;
    try {
      l = JSON.parse(raw) as Line;
    } catch {
      skipped += 1;
      continue;
    }
    if (l.t === 'p') spent.push([l.id, l.u]);
    else if (l.t === 'u') byId.delete(l.id);
    else if (l.t === 's')
      byId.set(l.id, { id: l.id, specKey: l.k, pid: l.pid, startTicks: l.st, startedAt: l.at, ...(l.u !== undefined ? { onceUntil: l.u } : {}) });
    else if (l.t === 'x') {
      const e = byId.get(l.id);
      if (!e) continue;
      Object.assign(e, {
        // A line written before outputCapped existed has none: false.
        exit: { ...l.exit, outputCapped: l.exit.outputCapped === true },
        finishedAt: l.at,
        dropped: l.dropped,
        output: l.out.map(([s, d]) => ({ stream: s === 0 ? 'stdout' : 'stderr', data: Buffer.from(d, 'base64') })),
      });
    }
  }
  return { entries: [...byId.values()], spent, skipped };
}
