/**
 * The part of proto that carries no gRPC, for a process that needs nothing else of it: the agent's
 * task launcher, a small process, which through index.ts was bundled with grpc-js and protobufjs
 * (900 KB it never ran). index.ts exports these too.
 */
export { closeInheritedFds } from './inherited-fds.js';
export { AfterQuiet } from './quiet.js';
export { GaxxError, type ErrorCode } from './errors.js';
export { removeTree } from './remove-tree.js';
