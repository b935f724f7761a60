/**
 * Uploads over SFTP, each file checked on the host: written to a staging path, its sha256
 * computed there by `sha256sum` and compared with ours before it is moved into place. A file
 * that does not arrive intact never replaces anything (CHECKSUM_MISMATCH).
 */
import { createHash } from 'node:crypto';
import type ssh2 from 'ssh2';
import { GaxxError } from '../../proto/index.js';
import { execChecked, shellQuote } from './exec.js';

/** The client's SFTP session (opened once per connection by the caller). */
export function openSftp(client: ssh2.Client): Promise<ssh2.SFTPWrapper> {
  return new Promise((resolve, reject) => {
    client.sftp((err, sftp) => (err ? reject(new GaxxError('UNAVAILABLE', `SFTP session refused: ${err.message}`, { cause: err })) : resolve(sftp)));
  });
}

function writeAll(sftp: ssh2.SFTPWrapper, path: string, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = sftp.createWriteStream(path, { mode: 0o600 });
    ws.on('error', (e: Error) => reject(new GaxxError('UNAVAILABLE', `SFTP write of ${path} failed: ${e.message}`, { cause: e })));
    ws.on('close', () => resolve());
    ws.end(data);
  });
}

/** sha256 hex of a buffer. */
export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Uploads `data` to `stagingPath` (a path the SSH user may write), then checks its sha256 on the
 * host. Returns the digest. CHECKSUM_MISMATCH when the host computes another one.
 */
export async function uploadVerified(client: ssh2.Client, sftp: ssh2.SFTPWrapper, data: Buffer, stagingPath: string): Promise<string> {
  const want = sha256Hex(data);
  await writeAll(sftp, stagingPath, data);
  const out = await execChecked(client, `sha256sum -- ${shellQuote(stagingPath)}`, `sha256sum of ${stagingPath}`);
  const got = out.trim().split(/\s+/)[0] ?? '';
  if (got !== want) {
    await execChecked(client, `rm -f -- ${shellQuote(stagingPath)}`, 'removing a bad upload').catch(() => undefined);
    throw new GaxxError('CHECKSUM_MISMATCH', `${stagingPath} arrived with sha256 ${got || '(none)'}, sent ${want}`);
  }
  return want;
}
