/**
 * Loads the .proto files with the one set of loader options that proto/gen was generated with
 * (scripts/gen-proto.mjs passes the same ones as flags).
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProtoGrpcType as AgentProto } from './gen/agent.js';
import type { ProtoGrpcType as HealthProto } from './gen/health.js';

/** proto-loader options; changing one means regenerating proto/gen. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** Directory holding gaxx/ and grpc/ (.proto files sit beside this module, in src and dist). */
export const PROTO_DIR = dirname(fileURLToPath(import.meta.url));

let cached: { agent: AgentProto; health: HealthProto } | undefined;

/** The loaded gaxx.agent.v1 and grpc.health.v1 packages (loaded once per process). */
export function loadProtos(): { agent: AgentProto; health: HealthProto } {
  if (!cached) {
    const load = (file: string) =>
      grpc.loadPackageDefinition(protoLoader.loadSync(file, { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] }));
    cached = {
      agent: load('gaxx/agent/v1/agent.proto') as unknown as AgentProto,
      health: load('grpc/health/v1/health.proto') as unknown as HealthProto,
    };
  }
  return cached;
}
