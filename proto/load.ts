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
import { decodeExecEvent, encodeExecRequest } from './exec-codec.js';
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
const agentMethodProtos = new Map<AgentMethod, AgentProto>();

function load(json: object): unknown {
  const { grpc, protoLoader } = grpcModules();
  return grpc.loadPackageDefinition(protoLoader.fromJSON(json as ProtoJson, LOADER_OPTIONS));
}

/** The Agent service's methods, as the .proto names them. */
export type AgentMethod = 'Exec' | 'Cancel' | 'PutFile' | 'GetFile' | 'Info' | 'CreateCsr';

/** A protobufjs JSON namespace: nested types, a service's methods, a message's fields. */
interface JsonNode {
  nested?: Record<string, JsonNode>;
  methods?: Record<string, { requestType: string; responseType: string }>;
  fields?: Record<string, { type: string; keyType?: string }>;
}

/**
 * `json` with the service at `path` cut down to `methods`, and its package down to the types
 * those methods reach: building a package definition costs per message (proto-loader describes
 * every one of them), and a command that calls one method needs only that method's types. A
 * type is kept when any reached field names it (by its last name part), so nothing reached is
 * ever dropped.
 */
export function methodSubset(json: object, path: readonly string[], methods: readonly string[]): object {
  const root = structuredClone(json) as JsonNode;
  let pkg = root;
  for (const name of path.slice(0, -1)) pkg = pkg.nested?.[name] as JsonNode;
  const types = pkg.nested ?? {};
  const service = types[path[path.length - 1] as string] as JsonNode;
  const all = service.methods ?? {};
  const picked: NonNullable<JsonNode['methods']> = {};
  for (const m of methods) if (all[m]) picked[m] = all[m];
  service.methods = picked;
  const kept = new Set([path[path.length - 1] as string]);
  const reach = (typeName: string): void => {
    const name = typeName.split('.').pop() as string;
    const t = types[name];
    if (kept.has(name) || t === undefined) return;
    kept.add(name);
    visit(t);
  };
  const visit = (t: JsonNode): void => {
    for (const f of Object.values(t.fields ?? {})) reach(f.type);
    for (const n of Object.values(t.nested ?? {})) visit(n);
  };
  for (const m of Object.values(picked)) {
    reach(m.requestType);
    reach(m.responseType);
  }
  for (const name of Object.keys(types)) if (!kept.has(name)) delete types[name];
  return root;
}

/**
 * The gaxx.agent.v1 and grpc.health.v1 packages, each loaded once per process on first access
 * (building a package definition is a good part of a short command's start; `gaxx exec` never
 * needs the health service), and `agentMethod(m)`: the Agent service with that one method and
 * the types it uses, for a client that calls few of them (see methodSubset); Exec's, the method
 * of every short command that runs something, without proto-loader (execClientProto).
 */
export function loadProtos(): { readonly agent: AgentProto; readonly health: HealthProto; agentMethod(m: AgentMethod): AgentProto } {
  return {
    get agent() {
      agentProto ??= load(AGENT_PROTO) as AgentProto;
      return agentProto;
    },
    get health() {
      healthProto ??= load(HEALTH_PROTO) as HealthProto;
      return healthProto;
    },
    agentMethod(m: AgentMethod): AgentProto {
      let proto = agentMethodProtos.get(m);
      if (!proto) {
        proto = m === 'Exec' ? execClientProto() : (load(methodSubset(AGENT_PROTO, ['gaxx', 'agent', 'v1', 'Agent'], [m])) as AgentProto);
        agentMethodProtos.set(m, proto);
      }
      return proto;
    },
  };
}

/**
 * The Agent service with its Exec method alone, for a client, with the messages in plain code
 * (exec-codec.ts): without proto-loader and protobufjs. The method's other directions (decoding
 * a request, encoding an event) are a server's, which this is not.
 */
function execClientProto(): AgentProto {
  const { grpc } = grpcModules();
  const serverSide = (): never => {
    throw new Error('the Exec client definition encodes requests and decodes events only');
  };
  const Agent = grpc.makeClientConstructor(
    {
      Exec: {
        path: '/gaxx.agent.v1.Agent/Exec',
        requestStream: false,
        responseStream: true,
        requestSerialize: encodeExecRequest,
        requestDeserialize: serverSide,
        responseSerialize: serverSide,
        responseDeserialize: decodeExecEvent,
        originalName: 'exec',
      },
    },
    'gaxx.agent.v1.Agent',
  );
  return { gaxx: { agent: { v1: { Agent } } } } as unknown as AgentProto;
}
