/**
 * A worker's hold on one job: BullMQ's lock. A worker that takes a job sets `<job key>:lock` to
 * a token of its own for the lock's duration and renews it while it works; once it expires (the
 * worker died, stalled or lost Redis for longer), another worker takes the job and sets its own
 * token. Nothing else sets the key to a token once it is gone, so while it holds this worker's
 * token no other worker has had the job since this one took it, and the job's data is what this
 * worker read and wrote.
 *
 * So every step a worker takes for a job after an await (saving its placement, an Exec, a
 * Cancel, publishing its result) is taken only while the lock still holds its token, checked in
 * the same Redis script as the write (a worker that stalled past its lock must not dispatch
 * from its stale copy of the job what the worker that took it over has placed elsewhere: the
 * task ran on both agents). A check that finds the lock gone or another's marks the hold lost:
 * its `signal` aborts the job's work, and the job is left to the worker that has it.
 */
import type { Cluster, Redis } from 'ioredis';

/** The job is no longer this worker's: its lock expired or another worker took the job over. */
export class LockLost extends Error {
  constructor(jobId: string) {
    super(`the lock on job ${jobId} is lost: another worker has the job`);
  }
}

/** A job's lock key and this worker's token (what a script checks before it writes). */
export interface LockRef {
  key: string;
  token: string;
}

/** Lua: whether KEYS[n] (the lock) holds ARGV[m] (the token); used inside the scripts that write. */
export const lockHeld = (key: string, token: string): string => `redis.call('GET', ${key}) == ${token}`;

const HOLDS = `return ${lockHeld('KEYS[1]', 'ARGV[1]')} and 1 or 0`;

// KEYS: lock, job hash. ARGV: token, the job's data. Only the holder writes, and only a job that is there.
const SAVE = `
if not (${lockHeld('KEYS[1]', 'ARGV[1]')}) or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 'data', ARGV[2])
return 1
`;

/** One job as one worker holds it (see the module comment). */
export class JobLock {
  private readonly ctl = new AbortController();
  /** Aborts once the hold is found lost. */
  readonly signal = this.ctl.signal;
  readonly ref: LockRef;

  /** `jobKey`: the job's hash (BullMQ's `toKey(jobId)`); `token`: the one this worker took it with. */
  constructor(
    private readonly redis: Redis | Cluster,
    readonly jobId: string,
    private readonly jobKey: string,
    token: string,
    private readonly onLost?: (lock: JobLock) => void,
  ) {
    this.ref = { key: `${jobKey}:lock`, token };
  }

  get lost(): boolean {
    return this.signal.aborted;
  }

  /** Marks the hold lost (a script found it so): the job's work stops. */
  lose(): LockLost {
    if (!this.lost) {
      this.ctl.abort();
      this.onLost?.(this);
    }
    return new LockLost(this.jobId);
  }

  /** Whether the lock still holds this worker's token; marks the hold lost when not. */
  async verify(): Promise<boolean> {
    if (this.lost) return false;
    if ((await this.redis.eval(HOLDS, 1, this.ref.key, this.ref.token)) === 1) return true;
    this.lose();
    return false;
  }

  /** Resolves while this worker holds the job; throws LockLost otherwise. */
  async hold(): Promise<void> {
    if (!(await this.verify())) throw new LockLost(this.jobId);
  }

  /** Writes the job's data (its dispatch state) if this worker holds it, in one step; throws LockLost otherwise. */
  async save(data: unknown): Promise<void> {
    if (this.lost) throw new LockLost(this.jobId);
    if ((await this.redis.eval(SAVE, 2, this.ref.key, this.jobKey, this.ref.token, JSON.stringify(data))) !== 1) throw this.lose();
  }
}

/**
 * A worker's holds, by job id: BullMQ reports a lock it could not renew by job id
 * (`lockRenewalFailed`); each hold of that job is checked, and the lost ones stop.
 */
export class JobLocks {
  private readonly byJob = new Map<string, Set<JobLock>>();

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly onLost?: (lock: JobLock) => void,
  ) {}

  /** Starts holding a job this worker took with `token`; `release` it when its work ends. */
  take(jobId: string, jobKey: string, token: string): JobLock {
    const lock = new JobLock(this.redis, jobId, jobKey, token, this.onLost);
    let set = this.byJob.get(jobId);
    if (!set) this.byJob.set(jobId, (set = new Set()));
    set.add(lock);
    return lock;
  }

  release(lock: JobLock): void {
    const set = this.byJob.get(lock.jobId);
    set?.delete(lock);
    if (set?.size === 0) this.byJob.delete(lock.jobId);
  }

  /** BullMQ could not renew these jobs' locks: the holds that are lost stop (a Redis error leaves them to their next check). */
  renewalFailed(jobIds: readonly string[]): void {
    for (const id of jobIds) for (const lock of this.byJob.get(id) ?? []) void lock.verify().catch(() => undefined);
  }
}
