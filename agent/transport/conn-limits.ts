/**
 * Counting caps the agent enforces itself, since grpc-js has none: open connections per address
 * and in total, and concurrent calls per peer. Each `tryAcquire` hands back a release function
 * (idempotent), so a connection or call gives its slot back exactly once however it ends.
 */
import { normalizeAddress } from './blocklist.js';

/** A slot's release function; calling it more than once is harmless. */
export type Release = () => void;

function once(fn: () => void): Release {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

/** Counts of keyed slots with a per-key cap and an optional total cap. */
export class KeyedCounter {
  private readonly counts = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly perKey: number,
    private readonly maxTotal = Number.POSITIVE_INFINITY,
  ) {}

  /** Takes a slot for `key`; undefined when the key or the total is at its cap. */
  tryAcquire(key: string): { release: Release } | { refused: 'per_key' | 'total' } {
    const n = this.counts.get(key) ?? 0;
    // The key's own cap first: 'total' then means this key had room (transport-guards.ts makes room for it).
    if (n >= this.perKey) return { refused: 'per_key' };
    if (this.total >= this.maxTotal) return { refused: 'total' };
    this.counts.set(key, n + 1);
    this.total += 1;
    return {
      release: once(() => {
        const left = (this.counts.get(key) ?? 1) - 1;
        if (left <= 0) this.counts.delete(key);
        else this.counts.set(key, left);
        this.total -= 1;
      }),
    };
  }

  /** Slots held for `key`. */
  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  /** Slots held in total. */
  size(): number {
    return this.total;
  }

  /** Keys holding at least one slot. */
  keys(): number {
    return this.counts.size;
  }
}

/** A connection's slot: in its address's room for handshakes until `secure()`, then in the one for sessions. */
export interface ConnectionSlot {
  /**
   * The connection's handshake finished: its slot moves to its address's room for verified
   * sessions. False when that room is full: close the connection (its release frees its slot).
   */
  secure(): boolean;
  release: Release;
}

/**
 * Open connections per peer address and in total. An address's verified sessions have a room of
 * their own, of the per-address cap: connections that never finish a handshake never take a
 * verified client's place, nor do its sessions leave a flood of handshakes fewer slots to cycle
 * through. Its connections in their handshake may be twice the cap at most when asked
 * (`beyondAddressCap`): transport-guards.ts keeps those that have sent nothing yet, and those
 * that have, to the cap each.
 */
export class ConnectionTracker {
  private readonly handshakes = new KeyedCounter(Number.POSITIVE_INFINITY);
  private readonly sessions: KeyedCounter;
  private total = 0;
  /** The per-address cap. */
  readonly perAddress: number;

  constructor(private readonly limits: { maxConnections: number; maxConnectionsPerAddress: number }) {
    this.perAddress = limits.maxConnectionsPerAddress;
    this.sessions = new KeyedCounter(limits.maxConnectionsPerAddress);
  }

  /**
   * A slot for a new connection from `address`, or why it is refused: 'too_many_connections'
   * when its address has no room for another handshake (the cap, or twice it with
   * `beyondAddressCap`), or none for another session (its handshake could not be kept);
   * 'agent_at_capacity' at the total cap.
   */
  tryAcquire(
    address: string | undefined,
    opts: { beyondAddressCap?: boolean } = {},
  ): ConnectionSlot | { refused: 'too_many_connections' | 'agent_at_capacity' } {
    const key = normalizeAddress(address);
    // The address's caps first: 'agent_at_capacity' then means this address had room (transport-guards.ts makes room for it).
    if (!this.hasSessionRoom(key)) return { refused: 'too_many_connections' };
    if (this.handshakes.count(key) >= this.perAddress * (opts.beyondAddressCap ? 2 : 1)) return { refused: 'too_many_connections' };
    if (this.total >= this.limits.maxConnections) return { refused: 'agent_at_capacity' };
    const handshake = this.handshakes.tryAcquire(key);
    if ('refused' in handshake) return { refused: 'too_many_connections' };
    this.total += 1;
    let state: 'handshake' | 'session' | 'released' = 'handshake';
    let held: Release = handshake.release;
    return {
      secure: () => {
        if (state !== 'handshake') return state === 'session';
        const session = this.sessions.tryAcquire(key);
        if ('refused' in session) return false;
        held();
        held = session.release;
        state = 'session';
        return true;
      },
      release: once(() => {
        state = 'released';
        held();
        this.total -= 1;
      }),
    };
  }

  /** Connections of `address` in their handshake. */
  handshaking(address: string): number {
    return this.handshakes.count(normalizeAddress(address));
  }

  /** Whether `address` may have another verified session. */
  hasSessionRoom(address: string): boolean {
    return this.sessions.count(normalizeAddress(address)) < this.limits.maxConnectionsPerAddress;
  }

  /** Open connections from `address`. */
  count(address: string): number {
    const key = normalizeAddress(address);
    return this.handshakes.count(key) + this.sessions.count(key);
  }

  /** Open connections in total. */
  open(): number {
    return this.total;
  }
}

/** Concurrent calls per peer address, over all its connections. */
export class StreamLimiter {
  private readonly counter: KeyedCounter;
  private refused = 0;

  constructor(maxStreamsPerPeer: number) {
    this.counter = new KeyedCounter(maxStreamsPerPeer);
  }

  /** A slot for one call from `peer`; undefined (and counted) when the peer is at its cap. */
  tryOpen(peer: string | undefined): Release | undefined {
    const got = this.counter.tryAcquire(normalizeAddress(peer));
    if ('release' in got) return got.release;
    this.refused += 1;
    return undefined;
  }

  /** Calls in flight, all peers together. */
  active(): number {
    return this.counter.size();
  }

  /** Calls refused for the per-peer cap so far. */
  refusedTotal(): number {
    return this.refused;
  }
}

/**
 * The address part of a grpc-js peer string (`ipv4:1.2.3.4:5`, `ipv6:[::1]:5`, `1.2.3.4:5`,
 * `[::1]:5`), so calls can be matched to the connection limits and the block list.
 */
export function peerAddress(peer: string): string {
  const p = peer.replace(/^(ipv4|ipv6|unix):/, '');
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(p);
  if (v6?.[1]) return normalizeAddress(v6[1]);
  const v4 = /^([^:]+):\d+$/.exec(p);
  return normalizeAddress(v4?.[1] ?? p);
}
