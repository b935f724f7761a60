// proto/load.ts loads the services from proto/gen/descriptors.ts (the .proto files as JSON, so
// the bundle is one file). These must be the very services proto-loader builds from the .proto
// files: same method paths, stream flags and message descriptors.
import * as protoLoader from '@grpc/proto-loader';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOADER_OPTIONS, loadProtos } from '../../proto/index.js';

const fromFiles = (file: string) => protoLoader.loadSync(file, { ...LOADER_OPTIONS, includeDirs: [resolve('proto')] });

type Service = Record<
  string,
  { path: string; requestStream: boolean; responseStream: boolean; requestType: { type: unknown }; responseType: { type: unknown } }
>;

function shape(service: Service) {
  return Object.fromEntries(
    Object.entries(service).map(([name, m]) => [
      name,
      { path: m.path, rs: m.requestStream, ss: m.responseStream, req: m.requestType.type, res: m.responseType.type },
    ]),
  );
}

describe('embedded proto descriptors', () => {
  it('give the services the .proto files give', () => {
    const { agent, health } = loadProtos();
    const agentDef = fromFiles('gaxx/agent/v1/agent.proto')['gaxx.agent.v1.Agent'] as unknown as Service;
    const healthDef = fromFiles('grpc/health/v1/health.proto')['grpc.health.v1.Health'] as unknown as Service;
    const embeddedAgent = (agent.gaxx.agent.v1.Agent as unknown as { service: Service }).service;
    const embeddedHealth = (health.grpc.health.v1.Health as unknown as { service: Service }).service;
    expect(Object.keys(embeddedAgent).length).toBeGreaterThan(3);
    expect(shape(embeddedAgent)).toEqual(shape(agentDef));
    expect(shape(embeddedHealth)).toEqual(shape(healthDef));
  });

  it('encode and decode a request as the .proto files do', () => {
    const { agent } = loadProtos();
    const exec = (
      agent.gaxx.agent.v1.Agent as unknown as {
        service: Service & Record<string, { requestSerialize(v: unknown): Buffer; requestDeserialize(b: Buffer): unknown }>;
      }
    ).service.Exec;
    const fileExec = (
      fromFiles('gaxx/agent/v1/agent.proto')['gaxx.agent.v1.Agent'] as unknown as Record<
        string,
        { requestSerialize(v: unknown): Buffer; requestDeserialize(b: Buffer): unknown }
      >
    ).Exec;
    const req = { taskId: 't-1', argv: ['echo', 'hi'], env: { A: 'b' }, timeoutMs: 1500 };
    const bytes = exec?.requestSerialize(req) as Buffer;
    expect(bytes.equals(fileExec?.requestSerialize(req) as Buffer)).toBe(true);
    expect(fileExec?.requestDeserialize(bytes)).toEqual(exec?.requestDeserialize(bytes));
  });
});

describe('GrpcStatus', () => {
  it("is grpc-js's status enum", async () => {
    const { status } = await import('@grpc/grpc-js');
    const { GrpcStatus } = await import('../../proto/index.js');
    const numeric = Object.fromEntries(Object.entries(status).filter(([k]) => Number.isNaN(Number(k))));
    expect(GrpcStatus).toEqual(numeric);
  });
});
