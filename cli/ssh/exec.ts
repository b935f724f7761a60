/** Running commands over an open SSH connection, collecting output and exit status. */
import type ssh2 from 'ssh2';
import { GaxxError } from '../../proto/index.js';

export interface RemoteResult {
  code: number | null;
  signal: string | undefined;
  stdout: string;
  stderr: string;
}

/** Largest output kept per stream; bootstrap commands print little. */
const MAX_OUTPUT = 1 << 20;

/** Runs a shell command line on the host; resolves with its exit status (never throws on non-zero). */
export function execRemote(client: ssh2.Client, command: string, opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<RemoteResult> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, stream) => {
      if (err) return reject(new GaxxError('UNAVAILABLE', `ssh exec failed: ${err.message}`, { cause: err }));
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      let signal: string | undefined;
      const timer = setTimeout(() => {
        stream.close();
        reject(new GaxxError('DEADLINE_EXCEEDED', `remote command did not finish in ${opts.timeoutMs} ms`));
      }, opts.timeoutMs ?? 120_000);
      stream.on('data', (b: Buffer) => {
        if (stdout.length < MAX_OUTPUT) stdout += b.toString();
      });
      stream.stderr.on('data', (b: Buffer) => {
        if (stderr.length < MAX_OUTPUT) stderr += b.toString();
      });
      stream.on('exit', (c: number | null, s?: string) => {
        code = c;
        signal = s ?? undefined;
      });
      stream.on('close', () => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
      stream.end(opts.input ?? '');
    });
  });
}

/** Runs a command and throws (FAILED_PRECONDITION, with `what` and stderr) unless it exits 0. */
export async function execChecked(
  client: ssh2.Client,
  command: string,
  what: string,
  opts: { input?: string | Buffer; timeoutMs?: number } = {},
): Promise<string> {
  const r = await execRemote(client, command, opts);
  if (r.code !== 0) {
    const detail = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ');
    throw new GaxxError('FAILED_PRECONDITION', `${what} failed (exit ${r.code ?? r.signal}): ${detail}`);
  }
  return r.stdout;
}

/** Single-quotes a string for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
