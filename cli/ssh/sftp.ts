/**
 * Uploads over SFTP, each file checked on the host: written to a staging path, its sha256
 * computed there by `sha256sum` and compared with ours. A file that did not arrive intact is
 * reported (CHECKSUM_MISMATCH) before anything moves it into place.
 */
import { createHash } from 'node:crypto';
import type ssh2 from 'ssh2';
import { GaxxError } from '../../proto/index.js';
import { execChecked, shellQuote } from './exec.js';

/** sha256 hex of a buffer. */
export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The client's SFTP session. */
export function openSftp(client: ssh2.Client): Promise<ssh2.SFTPWrapper> {
  return new Promise((resolve, reject) => {
    client.sftp((err, sftp) => (err ? reject(new GaxxError('UNAVAILABLE', `SFTP session refused: ${err.message}`, { cause: err })) : resolve(sftp)));
  });
}

function writeFile(sftp: ssh2.SFTPWrapper, path: string, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = sftp.createWriteStream(path, { mode: 0o600 });
    ws.on('error', (e: Error) => reject(new GaxxError('UNAVAILABLE', `SFTP write of ${path} failed: ${e.message}`, { cause: e })));
    ws.on('close', () => resolve());
    ws.end(data);
  });
}

/** Parses `sha256sum` output into path -> digest. */
export function parseSha256sum(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of out.split('\n')) {
    const hit = /^\\?([0-9a-f]{64}) [ *](.+)$/.exec(l);
    if (hit) m.set(hit[2] as string, hit[1] as string);
  }
  return m;
}

/**
 * Uploads files (absolute paths the SSH user may write; their directories are made), then
 * checks every file's sha256 on the host in one `sha256sum` call.
 */
export async function uploadVerified(client: ssh2.Client, files: Array<{ path: string; data: Buffer }>): Promise<void> {
  const dirs = [...new Set(files.map((f) => f.path.slice(0, f.path.lastIndexOf('/')) || '/'))];
  await execChecked(client, `mkdir -p -m 700 -- ${dirs.map(shellQuote).join(' ')}`, 'making upload dirs');
  const sftp = await openSftp(client);
  try {
    await Promise.all(files.map((f) => writeFile(sftp, f.path, f.data)));
  } finally {
    sftp.end();
  }
  const got = parseSha256sum(await execChecked(client, `sha256sum -- ${files.map((f) => shellQuote(f.path)).join(' ')}`, 'sha256sum of uploads'));
  for (const f of files) {
    const want = sha256Hex(f.data);
    if (got.get(f.path) !== want) throw new GaxxError('CHECKSUM_MISMATCH', `${f.path} arrived with sha256 ${got.get(f.path) ?? '(none)'}, sent ${want}`);
  }
}
