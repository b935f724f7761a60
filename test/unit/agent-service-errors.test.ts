// How the agent answers a failed call: a GaxxError keeps its code and its message, cut to a
// length that fits the call's trailers (a longer status never reaches the caller, who then waits
// for its deadline); a caller that went away mid-call is a warning, not an error with a stack.
import { describe, expect, it } from 'vitest';
import { boundedDetails, MAX_ERROR_DETAILS, toServiceError } from '../../agent/service-errors.js';
import { GaxxError } from '../../proto/index.js';

function recordingLog(): { log: Parameters<typeof toServiceError>[1]; lines: Array<[string, string]> } {
  const lines: Array<[string, string]> = [];
  const at = (level: string) => (_obj: unknown, msg?: string) => void lines.push([level, msg ?? '']);
  const log = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') } as unknown as Parameters<typeof toServiceError>[1];
  return { log, lines };
}

describe('agent call errors', () => {
  it('cut a long message, keep a short one', () => {
    expect(boundedDetails('no file x')).toBe('no file x');
    const long = `no file '${'x'.repeat(100_000)}'`;
    const cut = boundedDetails(long);
    expect(cut.length).toBeLessThan(MAX_ERROR_DETAILS + 40);
    expect(cut).toBe(`${long.slice(0, MAX_ERROR_DETAILS)}... (${long.length - MAX_ERROR_DETAILS} more characters)`);
    const { log } = recordingLog();
    const status = toServiceError(new GaxxError('NOT_FOUND', long), log);
    expect(status.details).toBe(cut);
    expect(status.metadata?.get('gaxx-error-code')).toEqual(['NOT_FOUND']);
  });

  it('a stream closed early by the caller is logged as a warning; anything else unexpected as an error', () => {
    const { log, lines } = recordingLog();
    const closed = Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    expect(toServiceError(closed, log).details).toBe('internal error');
    toServiceError(new Error('boom'), log);
    expect(lines).toEqual([
      ['warn', 'a call ended before its stream did'],
      ['error', 'unexpected error in a call'],
    ]);
  });
});
