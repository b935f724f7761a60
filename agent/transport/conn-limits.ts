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

/** Open connections per peer address (handshakes in progress included) and in total. */
export class ConnectionTracker {
  private readonly counter: KeyedCounter;

  constructor(limits: { maxConnections: number; maxConnectionsPerAddress: number }) {
    this.counter = new KeyedCounter(limits.maxConnectionsPerAddress, limits.maxConnections);
  }

  /** A slot for a new connection from `address`, or why it is refused. */
  tryAcquire(address: string | undefined): { release: Release } | { refused: 'too_many_connections' | 'agent_at_capacity' } {
    const got = this.counter.tryAcquire(normalizeAddress(address));
    if ('release' in got) return got;
    return { refused: got.refused === 'total' ? 'agent_at_capacity' : 'too_many_connections' };
  }

  /** Open connections from `address`. */
  count(address: string): number {
    return this.counter.count(normalizeAddress(address));
  }

  /** Open connections in total. */
  open(): number {
    return this.counter.size();
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
