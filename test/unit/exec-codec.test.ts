// proto/exec-codec.ts against proto-loader (with the LOADER_OPTIONS the agent uses): ExecRequest
// encoded to the same bytes, ExecEvent decoded to the same objects, for every field of the
// messages in agent.proto (a field added there fails here until the codec has it).
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { decodeExecEvent, encodeExecRequest } from '../../proto/exec-codec.js';
import { AGENT_PROTO } from '../../proto/gen/descriptors.js';
import { LOADER_OPTIONS } from '../../proto/index.js';

type Codec = { requestSerialize(v: unknown): Buffer; responseSerialize(v: unknown): Buffer; responseDeserialize(b: Buffer): unknown };
const exec = protoLoader.fromJSON(AGENT_PROTO as Parameters<typeof protoLoader.fromJSON>[0], LOADER_OPTIONS)['gaxx.agent.v1.Agent'] as unknown as Record<
  string,
  Codec
>;
const whole = exec.Exec as Codec;

/** The field names (camelCase, as the loader gives them) of message `name` in agent.proto. */
function fieldsOf(name: string): string[] {
  const types = (AGENT_PROTO as { nested: { gaxx: { nested: { agent: { nested: { v1: { nested: Record<string, { fields?: object }> } } } } } } }).nested.gaxx
    .nested.agent.nested.v1.nested;
  return Object.keys(types[name]?.fields ?? {}).map((f) => f.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()));
}

const signer = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const fullRequest = {
  taskId: 'run-1-0-h1',
  argv: ['sh', '-c', 'echo "é ✓ 𝄞"; exit 3', ''],
  env: { A: 'b', EMPTY: '', 'WITH=SIGN': 'x=y', UNICODE: 'ü𝄞' },
  workDir: 'jobs/one',
  stdin: Buffer.from([0, 1, 2, 255]),
  timeoutMs: 4_000_000_000,
  outputCapBytes: Number.MAX_SAFE_INTEGER,
  signed: {
    runId: 'run-1',
    taskId: '0-h1',
    target: { fleet: 'f1', host: 'h1', agents: ['127.0.0.2:8088', '[::1]:8088'] },
    expiresAtUnixMs: 1_796_429_372_840,
    maxRounds: 3,
    signature: Buffer.alloc(72, 7),
    signerCertPem: signer,
    signedAtUnixMs: 1_796_342_972_840,
  },
  existingOnly: true,
  journalId: '0123456789abcdef0123456789abcdef',
};

describe('encodeExecRequest', () => {
  it('covers every field of ExecRequest, SignedTask and TaskTarget', () => {
    expect(Object.keys(fullRequest).sort()).toEqual(fieldsOf('ExecRequest').sort());
    expect(Object.keys(fullRequest.signed).sort()).toEqual(fieldsOf('SignedTask').sort());
    expect(Object.keys(fullRequest.signed.target).sort()).toEqual(fieldsOf('TaskTarget').sort());
  });

  it.each([
    ['every field set', fullRequest],
    ['a plain exec', { taskId: 't', argv: ['true'], env: {}, stdin: Buffer.alloc(0) }],
    ['empty strings, zeros and empty lists are written when present', { taskId: '', argv: [], env: {}, workDir: '', timeoutMs: 0, outputCapBytes: 0 }],
    ['null and undefined fields are left out', { taskId: 't', workDir: undefined, stdin: null, signed: null, timeoutMs: undefined }],
    ['64-bit numbers past 32 bits', { outputCapBytes: 2 ** 32 + 5, signed: { expiresAtUnixMs: 2 ** 40 + 1, signedAtUnixMs: 2 ** 40 - 1 } }],
    ['a signing time as a decimal string', { signed: { signedAtUnixMs: '1796342972840' } }],
    ['a zero signing time is written when present', { signed: { runId: 'r', signedAtUnixMs: 0 } }],
    ['numbers and bytes as strings (decimal, base64)', { outputCapBytes: '123456789012', timeoutMs: '15', stdin: 'aGVsbG8=', signed: { signature: 'AAEC' } }],
    ['a Long', { outputCapBytes: { low: 5, high: 1, unsigned: true } }],
    ['non-string values coerced as strings', { taskId: 42, argv: [1, true], env: { N: 7 } }],
    ['a signed task with no target fields', { taskId: 't', signed: { runId: 'r', target: {} } }],
    ['a Uint8Array for bytes', { stdin: new Uint8Array([9, 8, 7]) }],
    ['a false bool is written when present', { taskId: 't', existingOnly: false }],
    ['falsy lists and maps are none', { argv: '', env: 0, signed: { target: { agents: '' } } }],
    ['lone surrogates (from a JSON escape) as protobufjs writes them', { argv: ['\ud800x', 'y\udc00', '\udbff'], env: { K: 'a\ud83d' } }],
  ])('%s: the bytes proto-loader writes', (_name, req) => {
    const ours = encodeExecRequest(req as never);
    expect(ours.toString('hex')).toBe(whole.requestSerialize(req).toString('hex'));
  });

  it('refuses what the fields cannot hold, where proto-loader does with a TypeError too', () => {
    expect(() => encodeExecRequest({ outputCapBytes: -1 })).toThrow(RangeError);
    expect(() => encodeExecRequest({ stdin: 5 as never })).toThrow(TypeError);
    for (const bad of [{ argv: 'true' }, { env: 'A=b' }, { signed: 'x' }, { signed: { target: 5 } }, { signed: { target: { agents: 'a' } } }]) {
      expect(() => whole.requestSerialize(bad)).toThrow(TypeError);
      expect(() => encodeExecRequest(bad as never)).toThrow(TypeError);
    }
  });
});

describe('decodeExecEvent', () => {
  const exit = {
    code: -9,
    signal: 'SIGKILL',
    durationMs: 2 ** 45 + 3,
    truncated: true,
    stdoutBytes: 2 ** 33,
    stderrBytes: 1,
    reason: 'timeout',
    error: 'é ✓',
    outputCapped: true,
  };
  const started = { pid: 2_147_483_647, attached: true, replayed: true, fromStart: true, journalId: '0123456789abcdef0123456789abcdef' };

  it('covers every field of ExecEvent, Started and Exit', () => {
    expect(fieldsOf('ExecEvent').sort()).toEqual(['exit', 'started', 'stderr', 'stdout']);
    expect(Object.keys(started).sort()).toEqual(fieldsOf('Started').sort());
    expect(Object.keys(exit).sort()).toEqual(fieldsOf('Exit').sort());
  });

  it.each([
    ['started', { started }],
    ['started, all defaults', { started: {} }],
    ['stdout', { stdout: Buffer.from('out\n') }],
    ['stderr', { stderr: Buffer.from([0, 255, 10]) }],
    ['empty stdout', { stdout: Buffer.alloc(0) }],
    ['exit, every field', { exit }],
    ['exit, all defaults', { exit: {} }],
    ['exit with a negative code', { exit: { code: -1 } }],
    ['nothing set', {}],
  ])('%s: the object proto-loader gives', (_name, ev) => {
    const bytes = whole.responseSerialize(ev);
    expect(decodeExecEvent(bytes)).toEqual(whole.responseDeserialize(bytes));
  });

  it('skips fields it does not know, of every wire type, at each level', () => {
    const unknown = Buffer.concat([
      Buffer.from([(9 << 3) | 0, 0x96, 0x01]), // varint
      Buffer.from([(10 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8]), // 64-bit
      Buffer.from([(11 << 3) | 2, 2, 0x61, 0x62]), // length-delimited
      Buffer.from([(12 << 3) | 5, 1, 2, 3, 4]), // 32-bit
    ]);
    const inner = Buffer.concat([whole.responseSerialize({ exit }).subarray(2), unknown]);
    const bytes = Buffer.concat([unknown, Buffer.from([(4 << 3) | 2, inner.length]), inner, unknown]);
    expect(decodeExecEvent(bytes)).toEqual(whole.responseDeserialize(bytes));
    expect(decodeExecEvent(bytes)).toEqual({ exit, event: 'exit' });
  });

  it('refuses a message cut short instead of reading past it', () => {
    const bytes = whole.responseSerialize({ exit });
    expect(() => decodeExecEvent(bytes.subarray(0, bytes.length - 3))).toThrow(RangeError);
    expect(() => decodeExecEvent(Buffer.from([(2 << 3) | 2, 5, 1]))).toThrow(RangeError);
  });
});
