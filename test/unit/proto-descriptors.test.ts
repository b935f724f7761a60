// proto/load.ts loads the services from proto/gen/descriptors.ts (the .proto files as JSON, so
// the bundle is one file). These must be the very services proto-loader builds from the .proto
// files: same method paths, stream flags and message descriptors.
import * as protoLoader from '@grpc/proto-loader';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOADER_OPTIONS, loadProtos, methodSubset } from '../../proto/index.js';
import { AGENT_PROTO } from '../../proto/gen/descriptors.js';

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

describe('one-method Agent services (loadProtos().agentMethod)', () => {
  const methods = ['Exec', 'Cancel', 'PutFile', 'GetFile', 'Info', 'CreateCsr'] as const;
  const full = () => (loadProtos().agent.gaxx.agent.v1.Agent as unknown as { service: Service }).service;

  it.each(methods)('%s: the same method as the whole service, and nothing else', (m) => {
    const one = (loadProtos().agentMethod(m).gaxx.agent.v1.Agent as unknown as { service: Service }).service;
    expect(Object.keys(one)).toEqual([m]);
    const route = (s: Service) => ({ path: s[m]?.path, rs: s[m]?.requestStream, ss: s[m]?.responseStream });
    expect(route(one)).toEqual(route(full()));
    // Exec's client codes its messages in plain code (exec-codec.ts, held to proto-loader's bytes
    // and objects in exec-codec.test.ts): it carries no message descriptors.
    if (m !== 'Exec') expect(shape(one)).toEqual({ [m]: shape(full())[m] });
  });

  it('names every Agent method in AgentMethod (a method added to the .proto is loadable alone)', () => {
    expect([...methods].sort()).toEqual(Object.keys(full()).sort());
  });

  it('keeps only the types a method reaches, through nested fields and enums', () => {
    const pkg = (j: object) =>
      (j as { nested: { gaxx: { nested: { agent: { nested: { v1: { nested: object } } } } } } }).nested.gaxx.nested.agent.nested.v1.nested;
    const exec = Object.keys(pkg(methodSubset(AGENT_PROTO, ['gaxx', 'agent', 'v1', 'Agent'], ['Exec']))).sort();
    // ExecRequest carries a SignedTask, which carries a TaskTarget; ExecEvent carries Started and Exit.
    expect(exec).toEqual(['Agent', 'ExecEvent', 'ExecRequest', 'Exit', 'SignedTask', 'Started', 'TaskTarget']);
    const put = Object.keys(pkg(methodSubset(AGENT_PROTO, ['gaxx', 'agent', 'v1', 'Agent'], ['PutFile'])));
    // PutFileChunk's header is a PutFileHeader, whose area is the FileArea enum.
    expect(put).toEqual(expect.arrayContaining(['PutFileChunk', 'PutFileHeader', 'FileArea', 'PutFileResponse']));
    expect(put).not.toContain('ExecRequest');
    // The input is not changed.
    expect(Object.keys(pkg(AGENT_PROTO)).length).toBeGreaterThan(exec.length);
  });

  it('encodes and decodes as the whole service does', () => {
    type Codec = { requestSerialize(v: unknown): Buffer; responseDeserialize(b: Buffer): unknown; responseSerialize(v: unknown): Buffer };
    const whole = (full() as unknown as Record<string, Codec>).Exec as Codec;
    const one = (loadProtos().agentMethod('Exec').gaxx.agent.v1.Agent as unknown as { service: Record<string, Codec> }).service.Exec as Codec;
    const req = {
      taskId: 't-2',
      argv: ['sh', '-c', 'exit 3'],
      env: { K: 'v' },
      timeoutMs: 2500,
      signed: { runId: 'r1', taskId: 't-2', expiresAtUnixMs: 5, signedAtUnixMs: 4 },
    };
    expect(one.requestSerialize(req).equals(whole.requestSerialize(req))).toBe(true);
    const ev = whole.responseSerialize({ exit: { code: 3, durationMs: 9, reason: 'timeout' } });
    expect(one.responseDeserialize(ev)).toEqual(whole.responseDeserialize(ev));
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
