/**
 * The part of proto that carries no gRPC, for a process that needs nothing else of it: the agent's
 * task launcher, a small process, which through index.ts was bundled with grpc-js and protobufjs
 * (900 KB it never ran). index.ts exports these too.
 */
export { closeInheritedFds } from './inherited-fds.js';
export { AfterQuiet } from './quiet.js';
export { GaxxError, type ErrorCode } from './errors.js';
export { inside } from './inside.js';
export { makeDirs, makeDirsAsync, type MakeDirsOptions } from './make-dirs.js';
export { fdLogDestination, type LogDestination } from './log-destination.js';
export { asProcessMark, pidAlive, processLives, processMark, processRunning, processStartTicks, type ProcessMark } from './proc-stat.js';

/**
 * Removes a tree at any depth (remove-tree.ts), loaded on first use: it needs node:crypto and
 * node:fs/promises, which a command that removes nothing (gaxx --version, gaxx exec) must not
 * set up at its start.
 */
export async function removeTree(path: string): Promise<void> {
  const m = await import('./remove-tree.js');
  return m.removeTree(path);
}
