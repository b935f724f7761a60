/**
 * The Exec method's message code on a server, built ahead of its first call. protobufjs (through
 * proto-loader) writes each message type's decode, toObject, fromObject and encode functions the
 * first time they run, and compiles them then: an agent's first Exec paid for it (ExecRequest
 * and the types it holds decoded, ExecEvent and its kinds encoded; built ahead, that Exec took
 * ~4 ms less of the agent's CPU), on a new fleet every agent at once inside its first run. `warmExecMethod` runs the method's two server
 * directions once on samples that set every field, so every type's code is there before a task
 * comes (test/unit/warm-codecs.test.ts holds the samples to every field of agent.proto).
 */
import type { ExecEvent } from './gen/gaxx/agent/v1/ExecEvent.js';
import type { ExecRequest } from './gen/gaxx/agent/v1/ExecRequest.js';
import { encodeExecRequest } from './exec-codec.js';

/** A request with every field set, nested messages too. */
export const EXEC_REQUEST_SAMPLE: ExecRequest = {
  taskId: 'warm',
  argv: ['true'],
  env: { WARM: '1' },
  workDir: 'warm',
  stdin: Buffer.from('warm'),
  timeoutMs: 1,
  outputCapBytes: 1,
  signed: {
    runId: 'warm',
    taskId: 'warm',
    target: { fleet: 'warm', host: 'warm', agents: ['warm'] },
    expiresAtUnixMs: 1,
    maxRounds: 1,
    signature: Buffer.from('warm'),
    signerCertPem: 'warm',
    signedAtUnixMs: 1,
  },
  existingOnly: true,
  journalId: 'warm',
};

/** One event of each kind of the oneof, every field of each set. */
export const EXEC_EVENT_SAMPLES: ExecEvent[] = [
  { started: { pid: 1, attached: true, replayed: true, fromStart: true, journalId: 'warm' } },
  { stdout: Buffer.from('warm') },
  { stderr: Buffer.from('warm') },
  {
    exit: { code: 1, signal: 'SIGTERM', durationMs: 1, truncated: true, stdoutBytes: 1, stderrBytes: 1, reason: 'warm', error: 'warm', outputCapped: true },
  },
];

/** What a server holds of a method (grpc-js MethodDefinition): its request decoder and its response encoder. */
export interface ServerCodecs {
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(value: never): Buffer;
}

/** Decodes the sample request and encodes each sample event once with `exec`'s codecs; returns what they gave. */
export function warmExecMethod(exec: ServerCodecs): { request: unknown; events: Buffer[] } {
  const request = exec.requestDeserialize(encodeExecRequest(EXEC_REQUEST_SAMPLE));
  const events = EXEC_EVENT_SAMPLES.map((e) => exec.responseSerialize(e as never));
  return { request, events };
}
