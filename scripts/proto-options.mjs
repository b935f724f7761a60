// The .proto files gaxx loads (relative to proto/). The loader options live in proto/load.ts;
// scripts/gen-proto.mjs passes the same ones as flags.
export const PROTO_FILES = ['gaxx/agent/v1/agent.proto', 'grpc/health/v1/health.proto'];
/** proto/gen/descriptors.ts: exported name -> .proto file it embeds. */
export const PROTO_DESCRIPTORS = { AGENT_PROTO: 'gaxx/agent/v1/agent.proto', HEALTH_PROTO: 'grpc/health/v1/health.proto' };
