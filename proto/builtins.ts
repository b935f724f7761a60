/**
 * Node built-ins that a command's start does not need, loaded on their first use. Every command
 * loads the proto barrel, so a built-in imported at the top of one of its modules is set up on
 * every start, `gaxx --version` included: node:crypto (with some fifteen internal modules of its
 * own, ~3.5 ms here) and node:net (the stream machinery) were. A module that needs one at once
 * imports it as usual; these are for code that runs later, if at all. Nothing here loads a
 * package (the task launcher's bundle takes these too); node:net is net-builtin.ts's.
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

/** A getter of the built-in `id`, loaded on the getter's first call and kept. */
function lazy<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= load(id) as T);
}

/** node:crypto, loaded on first use. */
export const nodeCrypto = lazy<typeof import('node:crypto')>('node:crypto');

/** node:tty, loaded on first use (it brings the stream and socket machinery with it). */
export const nodeTty = lazy<typeof import('node:tty')>('node:tty');

/** node:fs/promises, loaded on first use (~2 ms to set up). */
export const nodeFsPromises = lazy<typeof import('node:fs/promises')>('node:fs/promises');

/** node:child_process, loaded on first use (it brings node:net with it). */
export const nodeChildProcess = lazy<typeof import('node:child_process')>('node:child_process');

/** node:http, loaded on first use (~2.5 ms to set up; only servers and the collector need it). */
export const nodeHttp = lazy<typeof import('node:http')>('node:http');

/** node:https, loaded on first use (it brings node:http with it). */
export const nodeHttps = lazy<typeof import('node:https')>('node:https');

/** node:perf_hooks, loaded on first use (the event-loop delay histogram of loop-delay.ts). */
export const nodePerfHooks = lazy<typeof import('node:perf_hooks')>('node:perf_hooks');
