// GetFile's sending side on real files: it stops reading once the caller is gone, and refuses a
// file over the size PutFile takes before reading any of it.
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_FILE_BYTES, sendFile } from '../../agent/files/files.js';
import { isGaxxError, type GetFileChunk } from '../../proto/index.js';

const dir = mkdtempSync(join(tmpdir(), 'gaxx-send-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A sparse file of `size` bytes (no blocks: made at once, read as zeros). */
function sparse(name: string, size: number): void {
  writeFileSync(join(dir, name), '');
  truncateSync(join(dir, name), size);
}

describe('sendFile', () => {
  it('stops hashing once its signal is aborted: CANCELLED, nothing sent', async () => {
    sparse('whole', MAX_FILE_BYTES);
    const sent: GetFileChunk[] = [];
    const gone = new AbortController();
    const sending = sendFile(dir, 'whole', async (c) => void sent.push(c), gone.signal);
    setImmediate(() => gone.abort());
    const e = await sending.catch((x: unknown) => x);
    expect(isGaxxError(e, 'CANCELLED')).toBe(true);
    expect(sent).toEqual([]);
  });

  it('refuses a file over MAX_FILE_BYTES with FAILED_PRECONDITION before reading it', async () => {
    sparse('huge', 64 * 1024 ** 3);
    const sent: GetFileChunk[] = [];
    const e = await sendFile(dir, 'huge', async (c) => void sent.push(c)).catch((x: unknown) => x);
    expect(isGaxxError(e, 'FAILED_PRECONDITION')).toBe(true);
    expect(sent).toEqual([]);
  });
});
