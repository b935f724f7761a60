/**
 * Limits that protect the agent from hostile or runaway peers, as one zod schema with safe
 * defaults. The agent's config merges it under `guards`; every field is also exported as a
 * metric (see guard-metrics.ts) so an operator can see what is in force.
 */
import { z } from 'zod';

const int = (min: number) => z.number().int().min(min);

/** Token bucket per caller identity: `burst` calls at once, refilled at `perSecond`. */
export const RateLimitSchema = z
  .object({
    burst: int(1).default(1000),
    perSecond: z.number().positive().default(500),
    /** Buckets kept at most; idle full buckets are dropped first. */
    maxTracked: int(16).default(10_000),
  })
  .strict();

/** fail2ban-like blocking of peer addresses (never identities). */
export const BlockSchema = z
  .object({
    /** Failures (TLS handshake or authorization) within `windowMs` that trigger a block. */
    threshold: int(1).default(10),
    /**
     * Calls refused by the rate limit or the per-peer call cap within `windowMs` that also get
     * the address blocked (its connections are cut): a client far beyond its limits costs the
     * agent less blocked than throttled. 0: over-limit calls never block.
     */
    overLimitThreshold: int(0).default(500),
    windowMs: int(1).default(60_000),
    cooldownMs: int(1).default(300_000),
    /** Addresses tracked at most; the oldest failure records are dropped beyond it. */
    maxTracked: int(16).default(10_000),
    /**
     * Addresses never blocked, as fail2ban's ignoreip: by default the host itself (127.0.0.1,
     * ::1), whose processes are already inside; add the controller's address if it is fixed.
     */
    exempt: z.array(z.string().min(1)).default(['127.0.0.1', '::1']),
  })
  .strict();

/** The agent's guards; `GuardsSchema.parse({})` yields the production defaults. */
export const GuardsSchema = z
  .object({
    /** Open connections at most, all peers together. */
    maxConnections: int(1).default(1024),
    /**
     * Connections from one address: verified sessions at most, and in their TLS handshake, as
     * many that have sent nothing yet and as many that have (transport-guards.ts closes the
     * oldest beyond, a flood's rather than a prompt client's; twice this at once at most).
     */
    maxConnectionsPerAddress: int(1).default(32),
    /** Concurrent streams on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
    maxStreamsPerConnection: int(1).default(100),
    /** Concurrent calls at most from one peer address, over all its connections. */
    maxStreamsPerPeer: int(1).default(128),
    /** A TLS handshake not finished within this is cut (and counts as a handshake failure). */
    handshakeTimeoutMs: int(100).default(10_000),
    /** A connection with no call for this long is closed. */
    idleTimeoutMs: int(1000).default(300_000),
    /** Client PINGs closer together than this are strikes... */
    minPingIntervalMs: int(1).default(10_000),
    /** ...and more strikes than this cut the connection (GOAWAY ENHANCE_YOUR_CALM). */
    maxPingStrikes: int(0).default(3),
    rateLimit: RateLimitSchema.default({}),
    block: BlockSchema.default({}),
  })
  .strict();

export type GuardsConfig = z.infer<typeof GuardsSchema>;
export type RateLimitConfig = z.infer<typeof RateLimitSchema>;
export type BlockConfig = z.infer<typeof BlockSchema>;

/** The production defaults. */
export function defaultGuards(): GuardsConfig {
  return GuardsSchema.parse({});
}

/**
 * grpc-js server options derived from the guards: streams per connection, idle close. (The
 * message size limit is the agent config's maxMessageBytes.) grpc-js does not police client
 * pings itself; ping-policer.ts does.
 */
export function grpcServerOptions(g: GuardsConfig): Record<string, number> {
  return {
    'grpc.max_concurrent_streams': g.maxStreamsPerConnection,
    'grpc.max_connection_idle_ms': g.idleTimeoutMs,
  };
}
