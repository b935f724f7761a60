/** The Agent service's failures as gRPC statuses: a GaxxError's code in trailing metadata, anything else an opaque INTERNAL. */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  ERROR_CODE_METADATA_KEY,
  NOT_STARTED_METADATA_KEY,
  REFUSAL_METADATA_KEY,
  RETRY_AFTER_METADATA_KEY,
  grpcStatusFor,
  isGaxxError,
  refusedUnstarted,
} from '../proto/index.js';

/** A gRPC error for `e`: its gaxx code and message, or an opaque INTERNAL. */
export function toServiceError(e: unknown, log: Logger): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (isGaxxError(e)) {
    metadata.set(ERROR_CODE_METADATA_KEY, e.code);
    const retry = e.details?.retryAfterMs;
    if (typeof retry === 'number') metadata.set(RETRY_AFTER_METADATA_KEY, String(retry));
    // What is exhausted: a scheduler waits for a slot, but sends its tasks elsewhere meanwhile.
    const refusal = e.details?.refusal;
    if (typeof refusal === 'string') metadata.set(REFUSAL_METADATA_KEY, refusal);
    if (refusedUnstarted(e)) metadata.set(NOT_STARTED_METADATA_KEY, '1');
    return { code: grpcStatusFor(e.code), details: boundedDetails(e.message), metadata };
  }
  // The caller went away mid-call (a message over the size limit, a reset stream): not the agent's fault.
  if ((e as NodeJS.ErrnoException | undefined)?.code === 'ERR_STREAM_PREMATURE_CLOSE')
    log.warn({ code: 'ERR_STREAM_PREMATURE_CLOSE' }, 'a call ended before its stream did');
  else log.error({ err: e }, 'unexpected error in a call');
  metadata.set(ERROR_CODE_METADATA_KEY, 'INTERNAL');
  return { code: grpc.status.INTERNAL, details: 'internal error', metadata };
}

/** The longest error message sent to a caller (a message quoting a caller's input can be long). */
export const MAX_ERROR_DETAILS = 2048;

/**
 * `message` cut to MAX_ERROR_DETAILS characters: a status travels in the call's trailers, and
 * trailers over HTTP/2's header size limit never reach the caller, who then waits for its
 * deadline (a GetFile of a 100,000-character path echoed it whole, and went unanswered).
 */
export function boundedDetails(message: string): string {
  return message.length <= MAX_ERROR_DETAILS ? message : `${message.slice(0, MAX_ERROR_DETAILS)}... (${message.length - MAX_ERROR_DETAILS} more characters)`;
}
