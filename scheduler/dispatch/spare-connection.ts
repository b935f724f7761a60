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
 *
 * BullMQ also asks both of a Worker's connections for the server's version (a whole INFO, a round
 * trip and a 4 KB reply) before the Worker takes its first job. A server's version cannot change
 * while a connection to it stays up, so the connection kept here and each spare answer that
 * question (INFO without a section) from their first answer until they close (a reconnect asks
 * again); a spare asks it while it is made. Only those calls are kept: INFO of a section, and
 * ioredis's own ready check, go to the server every time.
 *
 * A spare is also given the Lua commands already defined on the connection it is made from (once
 * a first Worker has set that one up): the same ioredis Script objects and functions, which act
 * on whichever connection calls them. Defining the 50-odd again (a SHA1 of each script) was half
 * of a spare's set-up CPU (1.1-1.4 ms -> 0.6-0.7 ms a spare, 100 made in a row).
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
  const restoreInfo = rememberVersion(redis);
  let spare: Spare | undefined;
  let closed = false;
  let taken = 0;

  const refill = (): void => {
    if (closed || spare) return;
    const conn = original();
    // A spare is nobody's yet: its errors are the reconnects of an idle connection.
    conn.on('error', () => undefined);
    rememberVersion(conn);
    shareCommands(redis, conn);
    // The same set-up a Worker's connection gets, short of the version check (asked once it is
    // ready, so the Worker's own finds the answer kept); closing a shared RedisConnection leaves
    // the client connected.
    const rc = new RedisConnection(conn, { shared: true, blocking: false, skipVersionCheck: true });
    rc.on('error', () => undefined);
    const setUp = async (): Promise<boolean> => {
      try {
        await rc.client;
      } catch {
        void rc.close();
        // Ended before it was ready: dropped, so the next refill makes another.
        if (spare === s) spare = undefined;
        conn.disconnect();
        return false;
      }
      // Unanswered, it is left to the Worker.
      await conn.info().catch(() => undefined);
      s.loaded = true;
      void rc.close();
      return true;
    };
    const s: Spare = { conn, loaded: false, settled: Promise.resolve(false) };
    s.settled = setUp();
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
      // Back to the prototype's duplicate and info (the overrides were the only own ones).
      delete (redis as { duplicate?: unknown }).duplicate;
      restoreInfo();
      spare?.conn.disconnect();
      spare = undefined;
    },
  };
}

/**
 * Keeps `conn`'s first answer to INFO without a section until the connection closes (see the
 * module comment); returns what puts the prototype's `info` back.
 */
function rememberVersion(conn: Redis): () => void {
  const original = conn.info.bind(conn) as (...args: unknown[]) => Promise<string>;
  let kept: Promise<string> | undefined;
  const forget = (): void => {
    kept = undefined;
  };
  conn.on('close', forget);
  const info = (...args: unknown[]): Promise<string> => {
    if (args.length > 0) return original(...args);
    kept ??= original().catch((e: unknown) => {
      kept = undefined;
      throw e;
    });
    return kept;
  };
  conn.info = info as Redis['info'];
  return () => {
    conn.off('close', forget);
    delete (conn as { info?: unknown }).info;
  };
}

/**
 * Gives `to` the commands defined on `from` that it lacks (see the module comment); nothing when
 * their key prefixes differ (a Script carries its connection's prefix).
 */
function shareCommands(from: Redis, to: Redis): void {
  if (from.options.keyPrefix !== to.options.keyPrefix) return;
  const scripts = from.scriptsSet as Record<string, unknown>;
  const own = to.scriptsSet as Record<string, unknown>;
  const src = from as unknown as Record<string, unknown>;
  const dst = to as unknown as Record<string, unknown>;
  for (const name of Object.keys(scripts)) {
    if (Object.hasOwn(own, name)) continue;
    own[name] = scripts[name];
    dst[name] = src[name];
    dst[`${name}Buffer`] = src[`${name}Buffer`];
  }
}
