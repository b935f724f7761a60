/** File transfers with one agent: PutFile's upload in chunks and GetFile's download, each checked against its SHA-256. */
import { createHash } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { GaxxError, type AgentGrpcClient, type PutFileResponse__Output } from '../../proto/index.js';

/** File transfers are sent in chunks of this size. */
const FILE_CHUNK_BYTES = 64 * 1024;

/** The agent client's part in a transfer: the agent's address, the call's options (its deadline), its error mapping. */
export interface TransferContext {
  address: string;
  callOptions: grpc.CallOptions;
  mapError(e: unknown): GaxxError;
}

const sha256Of = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Uploads `data` to `path` through `client`'s PutFile; CHECKSUM_MISMATCH when the agent stored other bytes. */
export async function putFile(
  client: AgentGrpcClient,
  path: string,
  data: Buffer,
  opts: { mode?: number; area?: 'FILE_AREA_DATA' | 'FILE_AREA_CERTS' },
  ctx: TransferContext,
): Promise<PutFileResponse__Output> {
  const sha256 = sha256Of(data);
  const res = await new Promise<PutFileResponse__Output>((resolve, reject) => {
    const call = client.putFile(ctx.callOptions, (e, r) => (e || !r ? reject(ctx.mapError(e)) : resolve(r)));
    call.write({ header: { path, mode: opts.mode ?? 0, size: data.length, sha256, area: opts.area ?? 'FILE_AREA_DATA' } });
    // The data is already in memory, so queueing every chunk costs no extra copies.
    for (let i = 0; i < data.length; i += FILE_CHUNK_BYTES) call.write({ data: data.subarray(i, i + FILE_CHUNK_BYTES) });
    call.end();
  });
  if (res.sha256 !== sha256) throw new GaxxError('CHECKSUM_MISMATCH', `agent ${ctx.address} stored ${path} with sha256 ${res.sha256}, sent ${sha256}`);
  return res;
}

/** Downloads `path` through `client`'s GetFile; CHECKSUM_MISMATCH when it does not match its header. */
export async function getFile(client: AgentGrpcClient, path: string, ctx: TransferContext): Promise<{ data: Buffer; sha256: string; mode: number }> {
  const call = client.getFile({ path }, ctx.callOptions);
  let header: { size: number; mode: number; sha256: string } | undefined;
  const parts: Buffer[] = [];
  try {
    for await (const chunk of call as AsyncIterable<{ header?: { size: number; mode: number; sha256: string } | null; data?: Buffer }>) {
      if (chunk.header) header = chunk.header;
      else if (chunk.data) parts.push(chunk.data);
    }
  } catch (e) {
    throw ctx.mapError(e);
  }
  if (!header) throw new GaxxError('UNAVAILABLE', `agent ${ctx.address} sent ${path} without a header`);
  const data = Buffer.concat(parts);
  const sha256 = sha256Of(data);
  if (sha256 !== header.sha256 || data.length !== header.size) {
    throw new GaxxError(
      'CHECKSUM_MISMATCH',
      `${path} from agent ${ctx.address}: got ${data.length} bytes sha256 ${sha256}, header says ${header.size} bytes ${header.sha256}`,
    );
  }
  return { data, sha256, mode: header.mode };
}
