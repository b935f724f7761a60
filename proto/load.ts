/**
 * Loads the gRPC services with the one set of loader options that proto/gen was generated with
 * (scripts/gen-proto.mjs passes the same ones as flags). The definitions come from
 * proto/gen/descriptors.ts, the .proto files compiled to JSON at generation time, so no .proto
 * file is read at run time and the bundled agent is a single file. grpc-js itself is loaded on
 * the first call (grpc-modules.cts), not when proto/index.ts is imported.
 */
import type * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as AgentProto } from './gen/agent.js';
import { AGENT_PROTO, HEALTH_PROTO } from './gen/descriptors.js';
import type { ProtoGrpcType as HealthProto } from './gen/health.js';
import { grpcModules } from './grpc-modules.cjs';

/** proto-loader options; changing one means regenerating proto/gen. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

type ProtoJson = Parameters<typeof protoLoader.fromJSON>[0];

let agentProto: AgentProto | undefined;
let healthProto: HealthProto | undefined;

function load(json: object): unknown {
  const { grpc, protoLoader } = grpcModules();
  return grpc.loadPackageDefinition(protoLoader.fromJSON(json as ProtoJson, LOADER_OPTIONS));
}

/**
 * The gaxx.agent.v1 and grpc.health.v1 packages, each loaded once per process on first access
 * (building a package definition is a good part of a short command's start; `gaxx exec` never
 * needs the health service).
 */
export function loadProtos(): { readonly agent: AgentProto; readonly health: HealthProto } {
  return {
    get agent() {
      agentProto ??= load(AGENT_PROTO) as AgentProto;
      return agentProto;
    },
    get health() {
      healthProto ??= load(HEALTH_PROTO) as HealthProto;
      return healthProto;
    },
  };
}
