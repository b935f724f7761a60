/**
 * The audit log's vocabulary: one zod schema per security-relevant event. The schemas are the
 * whitelist: the writer parses every event through them, so a field that is not declared here
 * (an env map, stdin, file contents, a token) is dropped even if a caller passes one. None of
 * them has a field for such values, by design.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

const peer = z.string().max(128);
const identity = z.string().max(200);
const taskId = z.string().max(128);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const AuditEventSchema = z.discriminatedUnion('event', [
  z.object({
    event: z.literal('connection_refused'),
    peer,
    reason: z.enum(['blocked', 'too_many_connections', 'agent_at_capacity', 'handshake_timeout', 'handshake_failed', 'too_many_pings']),
    detail: z.string().max(300).optional(),
    /** Further refusals of the same kind from the same peer folded into this line. */
    suppressed: z.number().int().nonnegative().optional(),
  }),
  z.object({
    event: z.literal('auth_denied'),
    peer,
    identity: identity.optional(),
    serial: z.string().max(64).optional(),
    method: z.string().max(100),
    code: z.string().max(40),
  }),
  z.object({
    event: z.literal('exec_refused'),
    peer,
    identity,
    taskId,
    argv0: z.string().max(300),
    argvSha256: sha256,
    code: z.string().max(40),
    /** `<runId>/<taskId>` a signed block named (unverified when the code says so). */
    signedTask: z.string().max(260).optional(),
  }),
  z.object({ event: z.literal('exec_started'), peer, identity, taskId, argv0: z.string().max(300), argvSha256: sha256, pid: z.number().int() }),
  z.object({
    event: z.literal('exec_finished'),
    peer,
    identity,
    taskId,
    argv0: z.string().max(300),
    argvSha256: sha256,
    code: z.number().int(),
    signal: z.string().max(20).optional(),
    reason: z.string().max(40).optional(),
    /** Its output passed its cap and was cut there (with reason output_cap: the agent stopped it for that). */
    outputCapped: z.boolean().optional(),
    durationMs: z.number().int().nonnegative(),
  }),
  /** Who asked to cancel a task, whether one by that id was running, and why the ask was refused (a scheduler and an unsigned task). */
  z.object({ event: z.literal('task_cancel'), peer, identity, taskId, found: z.boolean(), refused: z.string().max(200).optional() }),
  z.object({ event: z.literal('file_put'), peer, identity, area: z.string().max(40).optional(), path: z.string().max(4096), sha256, size: z.number().int() }),
  z.object({ event: z.literal('csr_created'), peer, identity }),
  z.object({ event: z.literal('file_get'), peer, identity, path: z.string().max(4096), sha256, size: z.number().int() }),
  z.object({
    event: z.literal('cert_reload'),
    ok: z.boolean(),
    serial: z.string().max(64).optional(),
    notAfter: z.string().max(40).optional(),
    revoked: z.number().int().nonnegative().optional(),
    cas: z.number().int().nonnegative().optional(),
    code: z.string().max(40).optional(),
    detail: z.string().max(300).optional(),
  }),
  z.object({ event: z.literal('peer_blocked'), peer, untilMs: z.number().int(), failures: z.number().int(), reason: z.string().max(40) }),
  z.object({ event: z.literal('peer_unblocked'), peer }),
  /**
   * Events the agent could not write while its audit log failed (a full disk) and could not hold
   * until it could: `count` of them are missing before this line. The agent ran no new work meanwhile.
   */
  z.object({ event: z.literal('audit_lost'), count: z.number().int().positive(), errno: z.string().max(40) }),
  z.object({
    event: z.literal('agent_started'),
    version: z.string().max(40),
    isolation: z.string().max(40),
    serial: z.string().max(64),
    /** How tasks are sandboxed: bwrap, or none (with why). */
    sandbox: z.string().max(40).optional(),
    sandboxDetail: z.string().max(300).optional(),
    /** Started with --unsafe-no-isolation: tasks run with the agent's privileges. */
    unsafeNoIsolation: z.boolean().optional(),
  }),
]);

/** One audit event (without its timestamp). */
export type AuditEvent = z.infer<typeof AuditEventSchema>;
/** A line as stored: the event plus its ISO timestamp. */
export type AuditRecord = AuditEvent & { ts: string };

/**
 * sha256 of a full argv, framed so that ['a b'] and ['a', 'b'] differ: each argument as its byte
 * length, a colon, the bytes. Lets an operator match a task to a known command without the log
 * holding the arguments (which may carry secrets).
 */
export function argvSha256(argv: string[]): string {
  const h = createHash('sha256');
  for (const a of argv) {
    const b = Buffer.from(a, 'utf8');
    h.update(`${b.length}:`);
    h.update(b);
  }
  return h.digest('hex');
}

/** argv[0] as logged: the program, never its arguments. */
export function argv0Of(argv: string[]): string {
  return (argv[0] ?? '').slice(0, 300);
}
