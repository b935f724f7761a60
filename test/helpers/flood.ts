/**
 * A hostile client for flood tests and benches: raw HTTP/2 over mTLS from a chosen loopback
 * source address (grpc-js cannot bind one), firing unary gRPC calls with empty request messages
 * as fast as `concurrency` allows, over `connections` sessions. Counts outcomes by grpc-status.
 * Every wait in it is bounded: a call unanswered for `callTimeoutMs` is cancelled (counted as
 * 'timeout'), and the end of the flood (its duration, or `signal`) destroys every session, so the
 * calls still in flight end with it rather than keep the flood, and whoever awaits it, waiting.
 */
import { spawn } from 'node:child_process';
import http2, { connect, type ClientHttp2Session } from 'node:http2';
import { sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface FloodOptions {
  port: number;
  /** Source address, e.g. 127.0.0.2, so the flood is told apart from a good client. */
  localAddress: string;
  certPem: string | Buffer;
  keyPem: string | Buffer;
  caPem: string | Buffer;
  /** Full method path; the request message must be empty (Info, Health.Check). */
  path?: string;
  connections?: number;
  /** Calls in flight per connection. */
  concurrency?: number;
  durationMs: number;
  /** Ends the flood early. */
  signal?: AbortSignal;
  /** A call without an answer this long is cancelled and counted as 'timeout' (default 10 s). */
  callTimeoutMs?: number;
}

export interface FloodResult {
  calls: number;
  /** Count by grpc-status ('0' = OK), or 'conn_error' / 'stream_error' / 'timeout'. */
  outcomes: Record<string, number>;
  sessionsOpened: number;
}

const EMPTY_MESSAGE = Buffer.from([0, 0, 0, 0, 0]);

function oneCall(session: ClientHttp2Session, path: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    let status: string | undefined;
    let timedOut = false;
    let stream;
    try {
      stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    } catch {
      return resolve('stream_error');
    }
    const grab = (h: Record<string, unknown>) => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
    };
    stream.on('response', grab);
    stream.on('trailers', grab);
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    const timer = setTimeout(() => {
      timedOut = true;
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }, timeoutMs);
    stream.on('close', () => {
      clearTimeout(timer);
      resolve(status ?? (timedOut ? 'timeout' : 'stream_error'));
    });
    stream.end(EMPTY_MESSAGE);
  });
}

/** Runs the flood until `durationMs` has passed; never throws. */
export async function flood(o: FloodOptions): Promise<FloodResult> {
  const result: FloodResult = { calls: 0, outcomes: {}, sessionsOpened: 0 };
  const end = Date.now() + o.durationMs;
  const going = () => Date.now() < end && !o.signal?.aborted;
  const path = o.path ?? '/gaxx.agent.v1.Agent/Info';
  const count = (k: string) => (result.outcomes[k] = (result.outcomes[k] ?? 0) + 1);
  const sessions = new Set<ClientHttp2Session>();
  // The end: no session outlives it, nor the calls on them.
  const endAll = () => {
    for (const s of sessions) s.destroy();
  };
  const endTimer = setTimeout(endAll, o.durationMs);
  o.signal?.addEventListener('abort', endAll, { once: true });
  const worker = async () => {
    while (going()) {
      const session = connect(`https://localhost:${o.port}`, {
        ca: o.caPem,
        cert: o.certPem,
        key: o.keyPem,
        localAddress: o.localAddress,
      } as Parameters<typeof connect>[1]);
      session.on('error', () => undefined);
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
      // Ended between the check above and now: this one goes too.
      if (!going()) session.destroy();
      result.sessionsOpened += 1;
      const alive = await new Promise<boolean>((resolve) => {
        session.once('connect', () => resolve(true));
        session.once('close', () => resolve(false));
        setTimeout(() => resolve(false), 2000).unref();
      });
      if (!alive) {
        count('conn_error');
        session.destroy();
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const lanes = Array.from({ length: o.concurrency ?? 16 }, async () => {
        while (going() && !session.closed && !session.destroyed) {
          result.calls += 1;
          count(await oneCall(session, path, o.callTimeoutMs ?? 10_000));
        }
      });
      await Promise.all(lanes);
      session.destroy();
    }
  };
  try {
    await Promise.all(Array.from({ length: o.connections ?? 4 }, worker));
  } finally {
    clearTimeout(endTimer);
    o.signal?.removeEventListener('abort', endAll);
  }
  return result;
}

/**
 * Runs `flood` in a child process (the built dist/test/helpers/flood.js; options as a JSON line
 * on its stdin, a `stop` line ends it early), so the flood's own CPU does not slow the
 * well-behaved client measured in the caller's process.
 */
export function floodInChild(o: FloodOptions): Promise<FloodResult> {
  return new Promise((resolve, reject) => {
    // From the sources (vitest) run the built copy; from dist, this very file.
    const self = fileURLToPath(import.meta.url);
    const script = self.endsWith('.ts') ? self.replace(`${sep}test${sep}helpers${sep}flood.ts`, `${sep}dist${sep}test${sep}helpers${sep}flood.js`) : self;
    const child = spawn(process.execPath, [script], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as FloodResult) : reject(new Error(`flood child exited with ${code}`))));
    const opts = { ...o, signal: undefined, certPem: o.certPem.toString(), keyPem: o.keyPem.toString(), caPem: o.caPem.toString() };
    child.stdin.write(`${JSON.stringify(opts)}\n`);
    const stop = () => child.stdin.end('stop\n');
    if (o.signal?.aborted) stop();
    else o.signal?.addEventListener('abort', stop, { once: true });
    child.once('close', () => o.signal?.removeEventListener('abort', stop));
  });
}

// As a child: an options line on stdin, then `stop` (or end of stdin) ends it; result on stdout.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  let input = '';
  let started = false;
  const ctl = new AbortController();
  const begin = (line: string) => {
    started = true;
    // Done once the result is out, whether or not the parent still holds stdin open.
    void flood({ ...(JSON.parse(line) as FloodOptions), signal: ctl.signal }).then((r) => process.stdout.write(JSON.stringify(r), () => process.exit(0)));
  };
  process.stdin.on('data', (b: Buffer) => {
    input += b.toString();
    const nl = input.indexOf('\n');
    if (!started && nl >= 0) begin(input.slice(0, nl));
    if (started && input.slice(nl + 1).includes('stop')) ctl.abort();
  });
  process.stdin.on('end', () => ctl.abort());
}

/**
 * Opens one HTTP/2 session over mTLS from `localAddress` and sends `pings` PINGs at once.
 * Resolves to the GOAWAY error code the server answered with, or 'closed' / 'timeout'.
 */
export function pingFlood(
  port: number,
  tls: { ca: Buffer | string; cert: Buffer | string; key: Buffer | string },
  localAddress: string,
  opts: { pings?: number; timeoutMs?: number } = {},
): Promise<number | string> {
  return new Promise((resolve) => {
    const session = connect(`https://localhost:${port}`, { ...tls, localAddress } as Parameters<typeof connect>[1]);
    session.on('error', () => undefined);
    session.on('goaway', (errorCode) => resolve(errorCode));
    session.on('close', () => resolve('closed'));
    session.on('connect', () => {
      for (let i = 0; i < (opts.pings ?? 10); i++) session.ping(() => undefined);
    });
    setTimeout(() => resolve('timeout'), opts.timeoutMs ?? 5000).unref();
  });
}
