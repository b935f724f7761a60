/**
 * A blocking connection made ready before a run needs it. BullMQ gives every Worker a connection
 * of its own for its blocking reads, duplicated from the connection the Worker is handed, and
 * readies it before the Worker takes its first job: a connect, ioredis's ready check, the client
 * name, then its 50-odd Lua commands defined on the new client (a SHA1 of each script) and a
 * version check. A daemon starts a Worker for every run (each run has a queue of its own), so
 * every run paid that at its start: ~4 ms of CPU and several round trips before its first task
 * could be taken.
 *
 * `keepSpareConnection(redis)` makes such a connection ahead of time: connected, ready and with
 * BullMQ's commands already defined, so the Worker's own set-up of it finds them there and only
 * checks the version. `redis.duplicate` (which BullMQ calls) hands the spare out when it is ready,
 * named as BullMQ asked; while none is ready (Redis down, still connecting, or taken and not made
 * again yet) it duplicates as before. The owner makes the next one (`refill`) at a quiet moment:
 * made at once, its set-up would compete with the first tasks of the run that took the last one.
 * A standalone Redis only (on a cluster nothing changes), and one spare per connection.
 */
import { RedisConnection } from 'bullmq';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';

/** The spare of one connection; `close` disconnects the spare nobody took. */
export interface SpareConnection {
  /** Spares handed out so far. */
  readonly taken: number;
  /** Starts making a spare unless one is there or being made. */
  refill(): void;
  /** True once the spare there is ready; false when its set-up failed, or when there is none. */
  ready(): Promise<boolean>;
  close(): void;
}

interface Spare {
  conn: Redis;
  /** BullMQ's commands are defined on it. */
  loaded: boolean;
  /** Settles when it is loaded (true) or its set-up failed (false). */
  settled: Promise<boolean>;
}

/**
 * Keeps one ready spare behind `redis.duplicate(opts)`. Only duplicates asked for with nothing but
 * a `connectionName` (BullMQ's Worker asks so) are served from it; any other options go to the
 * original duplicate.
 */
export function keepSpareConnection(redis: Redis | Cluster): SpareConnection {
  if (!(redis instanceof Redis) || Object.hasOwn(redis, 'duplicate'))
    return { taken: 0, refill: () => undefined, ready: async () => false, close: () => undefined };
  const original = redis.duplicate.bind(redis);
  let spare: Spare | undefined;
  let closed = false;
  let taken = 0;

  const refill = (): void => {
    if (closed || spare) return;
    const conn = original();
    // A spare is nobody's yet: its errors are the reconnects of an idle connection.
    conn.on('error', () => undefined);
    // The same set-up a Worker's connection gets, short of the version check (the Worker still
    // makes that one itself); closing a shared RedisConnection leaves the client connected.
    const rc = new RedisConnection(conn, { shared: true, blocking: false, skipVersionCheck: true });
    rc.on('error', () => undefined);
    const s: Spare = {
      conn,
      loaded: false,
      settled: rc.client.then(
        () => {
          s.loaded = true;
          void rc.close();
          return true;
        },
        () => {
          void rc.close();
          // Ended before it was ready: dropped, so the next refill makes another.
          if (spare === s) spare = undefined;
          conn.disconnect();
          return false;
        },
      ),
    };
    spare = s;
  };

  const duplicate = (opts?: Partial<RedisOptions>): Redis => {
    const s = spare;
    const asksOnlyName = opts !== undefined && Object.keys(opts).every((k) => k === 'connectionName');
    if (closed || !s || !s.loaded || s.conn.status !== 'ready' || !asksOnlyName) return original(opts);
    spare = undefined;
    taken++;
    const name = opts.connectionName;
    if (name !== undefined) {
      // Named now, and again by ioredis itself after any reconnect.
      s.conn.options.connectionName = name;
      s.conn.client('SETNAME', name).catch(() => undefined);
    }
    return s.conn;
  };
  redis.duplicate = duplicate as Redis['duplicate'];
  refill();

  return {
    get taken() {
      return taken;
    },
    refill,
    ready: () => spare?.settled ?? Promise.resolve(false),
    close() {
      closed = true;
      // Back to the prototype's duplicate (the override was the only own one).
      delete (redis as { duplicate?: unknown }).duplicate;
      spare?.conn.disconnect();
      spare = undefined;
    },
  };
}
