/**
 * Raw grpc-js clients for tests: the Agent and Health services over mTLS with a cert dir's
 * cert/key/CA, plus promise helpers that collect a call's result or its gaxx error code.
 */
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkServerIdentity, createSecureContext } from 'node:tls';
import { secureContextOptions } from '../../certs/index.js';
import {
  ERROR_CODE_METADATA_KEY,
  loadProtos,
  NOT_STARTED_METADATA_KEY,
  type AgentGrpcClient,
  type ExecEvent__Output,
  type ExecRequest,
  type GetFileChunk__Output,
  type PutFileResponse__Output,
  type HealthClient,
} from '../../proto/index.js';

export interface RawClients {
  agent: AgentGrpcClient;
  health: HealthClient;
  close(): void;
}

/** The server name tests dial (the agent cert from makePki names localhost and 127.0.0.1). */
const TARGET_NAME = 'localhost';

/** Client credentials from a cert dir; `noCert` leaves out cert and key (CA only). */
export function clientCredentials(certDir: string, opts: { noCert?: boolean } = {}): grpc.ChannelCredentials {
  const read = (f: string) => readFileSync(join(certDir, f));
  const caPem = read('ca.pem');
  const ctx = opts.noCert
    ? createSecureContext({ ...secureContextOptions({ certPem: '', keyPem: '', caPem }), cert: undefined, key: undefined })
    : createSecureContext(secureContextOptions({ certPem: read('cert.pem'), keyPem: read('key.pem'), caPem }));
  return grpc.credentials.createFromSecureContext(ctx, { checkServerIdentity: (host, cert) => checkServerIdentity(host, cert) });
}

/** Agent and Health clients to `address` ('127.0.0.1:PORT') authenticating with `certDir`. */
export function rawAgentClient(
  address: string,
  certDir: string,
  opts: { noCert?: boolean; credentials?: grpc.ChannelCredentials; maxSendBytes?: number } = {},
): RawClients {
  const { agent, health } = loadProtos();
  const creds = opts.credentials ?? clientCredentials(certDir, opts);
  const options: grpc.ChannelOptions = {
    'grpc.ssl_target_name_override': TARGET_NAME,
    'grpc.default_authority': TARGET_NAME,
    'grpc.max_send_message_length': opts.maxSendBytes ?? 64 * 1024 * 1024,
  };
  const a = new agent.gaxx.agent.v1.Agent(address, creds, options);
  const h = new health.grpc.health.v1.Health(address, creds, options);
  return {
    agent: a,
    health: h,
    close: () => {
      a.close();
      h.close();
    },
  };
}

/** The outcome of a call: its value, or the gRPC status and gaxx code it failed with. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; status: number; gaxxCode: string | undefined; details: string };

function failure(e: grpc.ServiceError): { ok: false; status: number; gaxxCode: string | undefined; details: string } {
  const v = e.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
  return { ok: false, status: e.code, gaxxCode: v === undefined ? undefined : String(v), details: e.details };
}

const deadline = (ms: number) => new Date(Date.now() + ms);

/** Runs a unary call and resolves to its outcome (never rejects on gRPC errors). */
export function unary<Req, Res>(
  fn: (req: Req, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown,
  req: Req,
  timeoutMs = 10_000,
): Promise<Outcome<Res>> {
  return new Promise((resolve) => {
    fn(req, new grpc.Metadata(), { deadline: deadline(timeoutMs) }, (e, r) => resolve(e ? failure(e) : { ok: true, value: r as Res }));
  });
}

/** Collected Exec events, plus stdout/stderr joined, or the failure. */
export interface ExecResult {
  events: ExecEvent__Output[];
  stdout: string;
  stderr: string;
  error?: { status: number; gaxxCode: string | undefined };
  /** The failure's message, when the call failed. */
  errorDetails?: string;
  /** The agent said the task never started (its refusal's `gaxx-not-started` metadata). */
  notStarted?: boolean;
}

/** Runs Exec to the end; `onEvent` sees events as they arrive. */
export function execCollect(
  client: AgentGrpcClient,
  req: ExecRequest,
  onEvent?: (ev: ExecEvent__Output, call: grpc.ClientReadableStream<ExecEvent__Output>) => void,
  timeoutMs = 30_000,
): Promise<ExecResult> {
  return new Promise((resolve) => {
    const out: ExecResult = { events: [], stdout: '', stderr: '' };
    const call = client.Exec(req, { deadline: deadline(timeoutMs) });
    call.on('data', (ev: ExecEvent__Output) => {
      out.events.push(ev);
      if (ev.stdout) out.stdout += ev.stdout.toString();
      if (ev.stderr) out.stderr += ev.stderr.toString();
      onEvent?.(ev, call);
    });
    call.on('error', (e: grpc.ServiceError) => {
      const f = failure(e);
      out.error = { status: f.status, gaxxCode: f.gaxxCode };
      out.errorDetails = f.details;
      out.notStarted = e.metadata?.get(NOT_STARTED_METADATA_KEY)[0] !== undefined;
      resolve(out);
    });
    call.on('end', () => resolve(out));
  });
}

/** Starts an Exec; resolves once the agent reports the task started (or the call ended first), with the whole call's result to await. */
export async function execStarted(client: AgentGrpcClient, req: ExecRequest, timeoutMs?: number): Promise<{ result: Promise<ExecResult> }> {
  let started = (): void => undefined;
  const running = new Promise<void>((r) => (started = r));
  const result = execCollect(client, req, (ev) => ev.started && started(), timeoutMs);
  await Promise.race([running, result]);
  return { result };
}

/** The Exit event of a result (undefined when the call failed before one). */
export function exitOf(r: ExecResult): NonNullable<ExecEvent__Output['exit']> | undefined {
  return r.events.find((e) => e.exit)?.exit ?? undefined;
}

/** Uploads `data` with PutFile; `header` overrides the computed size/sha256 (for negative tests). */
export function putFile(
  client: AgentGrpcClient,
  header: { path: string; mode?: number; size?: number; sha256?: string; area?: 'FILE_AREA_DATA' | 'FILE_AREA_CERTS' },
  data: Buffer,
): Promise<Outcome<PutFileResponse__Output>> {
  return new Promise((resolve) => {
    const call = client.PutFile({ deadline: deadline(10_000) }, (e, r) => resolve(e ? failure(e) : { ok: true, value: r as PutFileResponse__Output }));
    call.write({
      header: {
        path: header.path,
        mode: header.mode ?? 0,
        size: header.size ?? data.length,
        sha256: header.sha256 ?? createHash('sha256').update(data).digest('hex'),
        area: header.area ?? 'FILE_AREA_DATA',
      },
    });
    for (let i = 0; i < data.length; i += 64 * 1024) call.write({ data: data.subarray(i, i + 64 * 1024) });
    call.end();
  });
}

/** Downloads a file with GetFile: its header and content, or the failure. */
export function getFile(client: AgentGrpcClient, path: string): Promise<Outcome<{ header: GetFileChunk__Output['header']; data: Buffer }>> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let header: GetFileChunk__Output['header'];
    const call = client.GetFile({ path }, { deadline: deadline(10_000) });
    call.on('data', (c: GetFileChunk__Output) => {
      if (c.header) header = c.header;
      if (c.data) parts.push(c.data);
    });
    call.on('error', (e: grpc.ServiceError) => resolve(failure(e)));
    call.on('end', () => resolve({ ok: true, value: { header, data: Buffer.concat(parts) } }));
  });
}
