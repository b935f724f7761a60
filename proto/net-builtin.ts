/** node:net, loaded on first use, with its IP checks colon-first (grpc-modules.cjs). */
import { colonFirstIpChecks } from './grpc-modules.cjs';

export const nodeNet: () => typeof import('node:net') = colonFirstIpChecks;
