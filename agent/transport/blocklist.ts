/**
 * fail2ban-like blocking inside the agent: a peer address that fails TLS handshakes or
 * authorization `threshold` times within `windowMs` is refused at connection time for
 * `cooldownMs`. Keyed by address only, never by identity: a valid identity calling from another
 * address is never locked out by someone else's failures.
 */
import { isIP } from 'node:net';
import type { BlockConfig } from './guard-config.js';

/** Why a failure was recorded. Over-limit refusals (rate limit, call cap) are counted apart, against their own threshold. */
export type FailureKind = 'handshake' | 'auth' | 'over_limit';

/** A blocked address, as Info and the audit log show it. */
export interface BlockedPeerEntry {
  address: string;
  untilMs: number;
  reason: string;
  failures: number;
}

/** Called once when an address becomes blocked and once when its block ends. */
export interface BlockListener {
  onBlock?(entry: BlockedPeerEntry): void;
  onUnblock?(address: string): void;
}

/** `::ffff:1.2.3.4` and `1.2.3.4` are one peer; IPv6 is compared in canonical lower case. */
export function normalizeAddress(address: string | undefined): string {
  if (!address) return 'unknown';
  const a = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped?.[1]) return mapped[1];
  return isIP(a) === 0 ? address : a;
}

/** Failure counting and blocking per peer address. */
export class PeerBlocker {
  private readonly failures = new Map<string, number[]>();
  private readonly blocks = new Map<string, BlockedPeerEntry>();
  private readonly exempt: Set<string>;
  private blocksTotal = 0;

  constructor(
    private readonly cfg: BlockConfig,
    private readonly listener: BlockListener = {},
  ) {
    this.exempt = new Set(cfg.exempt.map(normalizeAddress));
  }

  /**
   * Records one failure from `address`; returns the new block when this failure crossed the
   * threshold (the caller logs it; it is reported only once per block).
   */
  recordFailure(address: string | undefined, kind: FailureKind, nowMs = Date.now()): BlockedPeerEntry | undefined {
    const addr = normalizeAddress(address);
    if (this.exempt.has(addr) || this.isBlocked(addr, nowMs)) return undefined;
    const threshold = kind === 'over_limit' ? this.cfg.overLimitThreshold : this.cfg.threshold;
    if (threshold === 0) return undefined;
    const key = kind === 'over_limit' ? `${addr}|over` : addr;
    const since = nowMs - this.cfg.windowMs;
    const list = (this.failures.get(key) ?? []).filter((t) => t > since);
    list.push(nowMs);
    this.failures.delete(key);
    if (list.length < threshold) {
      if (this.failures.size >= this.cfg.maxTracked) this.pruneFailures(since);
      this.failures.set(key, list);
      return undefined;
    }
    const entry: BlockedPeerEntry = { address: addr, untilMs: nowMs + this.cfg.cooldownMs, reason: `${kind}_failures`, failures: list.length };
    this.blocks.set(addr, entry);
    this.blocksTotal += 1;
    this.listener.onBlock?.(entry);
    return entry;
  }

  /** True while `address` is blocked; an expired block is lifted (and reported) here. */
  isBlocked(address: string | undefined, nowMs = Date.now()): boolean {
    const addr = normalizeAddress(address);
    const entry = this.blocks.get(addr);
    if (!entry) return false;
    if (entry.untilMs > nowMs) return true;
    this.lift(addr);
    return false;
  }

  /** Blocked addresses now in force, soonest to expire first. */
  blocked(nowMs = Date.now()): BlockedPeerEntry[] {
    for (const [addr, e] of this.blocks) if (e.untilMs <= nowMs) this.lift(addr);
    return [...this.blocks.values()].sort((a, b) => a.untilMs - b.untilMs).map((e) => ({ ...e }));
  }

  /** Blocks started since the agent started (for metrics). */
  totalBlocks(): number {
    return this.blocksTotal;
  }

  private lift(addr: string): void {
    this.blocks.delete(addr);
    this.failures.delete(addr);
    this.failures.delete(`${addr}|over`);
    this.listener.onUnblock?.(addr);
  }

  /** Drops records with no failure in the window, then the oldest, to stay bounded. */
  private pruneFailures(since: number): void {
    for (const [k, list] of this.failures) if ((list[list.length - 1] ?? 0) <= since) this.failures.delete(k);
    while (this.failures.size >= this.cfg.maxTracked) {
      const oldest = this.failures.keys().next();
      if (oldest.done) break;
      this.failures.delete(oldest.value);
    }
  }
}
