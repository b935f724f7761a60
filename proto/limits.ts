/**
 * Request limits shared by every side that validates a task: the agent (Exec requests), the
 * scheduler (job data at enqueue and when read back) and the CLI. One table, so a task the
 * queue accepts is never refused by the agent for size, and the other way round.
 */
export const REQUEST_LIMITS = {
  /** argv entries, bytes of one entry (UTF-8), bytes of all entries. */
  argvItems: 4096,
  argBytes: 128 * 1024,
  argvBytes: 1024 * 1024,
  /** env entries, bytes of one value, bytes of all names and values (each pair counted + 2). */
  envEntries: 256,
  envValueBytes: 32 * 1024,
  envBytes: 64 * 1024,
  envNameChars: 128,
  /** stdin sent with one Exec (it fits in one gRPC message). */
  stdinBytes: 1024 * 1024,
  workDirChars: 4096,
  timeoutMs: 7 * 24 * 3600 * 1000,
} as const;

/** Environment variable names a task may set. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** Bytes of argv, as the limit counts them. */
export function argvBytes(argv: readonly string[]): number {
  return argv.reduce((n, s) => n + Buffer.byteLength(s), 0);
}

/** Bytes of an env, as the limit counts them (`NAME=value\0` for each entry). */
export function envBytes(env: Readonly<Record<string, string>>): number {
  return Object.entries(env).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v) + 2, 0);
}
