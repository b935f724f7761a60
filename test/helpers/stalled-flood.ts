/**
 * A hostile neighbour for connection-cap tests: connections to an agent that never finish their
 * TLS handshake, from one loopback address (by default 127.0.0.1, the address a task on the host
 * and a controller there both call from), each stalled at `kind`:
 *
 * - 'silent': sends nothing;
 * - 'header': sends the first 3 bytes of a TLS record header (`16 03 01`), then nothing;
 * - 'hello': sends a whole ClientHello (the agent answers it), then nothing, never its certificate;
 * - 'trickle': sends a byte every `trickleEveryMs` on every connection: a ClientHello, then a
 *   ChangeCipherSpec and a 16 KiB record it never finishes.
 *
 * `connections` are kept open: one the agent closes is opened again at once, as a task in a loop
 * would. Bounded: at most `maxOpens` connections opened in all, and the flood ends by itself after
 * `maxDurationMs` if nobody stopped it. Runs in a child process (stalledFloodInChild: the built
 * dist/test/helpers/stalled-flood.js), as a task on the host would, so its loop does not slow the
 * well-behaved client measured in the caller's process.
 */
import { spawn } from 'node:child_process';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { sep } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';

export type StallKind = 'silent' | 'header' | 'hello' | 'trickle';

export const STALL_KINDS: readonly StallKind[] = ['silent', 'header', 'hello', 'trickle'];

export interface StalledFloodOptions {
  port: number;
  /** Source address (default 127.0.0.1). */
  localAddress?: string;
  kind: StallKind;
  /** Connections kept open at once. */
  connections: number;
  /** Connections opened at most, in all. */
  maxOpens: number;
  /** The flood ends by itself after this long. */
  maxDurationMs: number;
  /** 'trickle': how often each connection sends its next byte (default 5 ms). */
  trickleEveryMs?: number;
}

export interface StalledFloodResult {
  /** Connections opened. */
  opened: number;
  /** Connections the server closed (evicted, refused, timed out). */
  cut: number;
}

export interface RunningFlood {
  /**
   * Resolves once the server has closed as many of the flood's connections as it keeps open:
   * it is at its cap and turning the flood's connections away. Rejects if the flood ends first.
   */
  full: Promise<void>;
  /** Ends the flood (every connection closed); its counts. */
  stop(): Promise<StalledFloodResult>;
}

/** A ClientHello as Node's TLS client sends it (ALPN h2, SNI localhost), captured on a throwaway local listener. */
export function clientHello(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const capture = createServer((s) => {
      let got = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        // The whole record: its 5-byte header, then the length the header gives.
        if (got.length < 5 || got.length < 5 + got.readUInt16BE(3)) return;
        s.destroy();
        capture.close();
        resolve(got);
      });
    });
    capture.on('error', reject);
    capture.listen(0, '127.0.0.1', () => {
      const c = tlsConnect({
        host: '127.0.0.1',
        port: (capture.address() as AddressInfo).port,
        servername: 'localhost',
        ALPNProtocols: ['h2'],
        rejectUnauthorized: false,
      });
      c.on('error', () => undefined);
      c.on('close', () => c.destroy());
    });
  });
}

/** What a trickling connection sends, a byte at a time: its hello, a ChangeCipherSpec (TLS 1.3 allows one), then a 16 KiB record's header and body. */
function trickleBytes(hello: Buffer): Buffer {
  return Buffer.concat([hello, Buffer.from([0x14, 0x03, 0x03, 0x00, 0x01, 0x01]), Buffer.from([0x17, 0x03, 0x03, 0x40, 0x00]), Buffer.alloc(0x4000 - 1)]);
}

/** Runs the flood in this process; `onFull` is called once the server is turning its connections away. */
export async function stalledFlood(
  o: StalledFloodOptions,
  onFull: () => void = () => undefined,
): Promise<{ stop(): StalledFloodResult; ended: Promise<StalledFloodResult> }> {
  const hello = o.kind === 'hello' || o.kind === 'trickle' ? await clientHello() : Buffer.alloc(0);
  const bytes = o.kind === 'trickle' ? trickleBytes(hello) : Buffer.alloc(0);
  const result: StalledFloodResult = { opened: 0, cut: 0 };
  const open = new Map<Socket, { sent: number }>();
  let stopped = false;
  let finish = (): void => undefined;
  const ended = new Promise<StalledFloodResult>((r) => (finish = () => r(result)));
  const stop = (): StalledFloodResult => {
    if (!stopped) {
      stopped = true;
      clearTimeout(deadline);
      if (trickle) clearInterval(trickle);
      for (const s of open.keys()) s.destroy();
      finish();
    }
    return result;
  };
  const deadline = setTimeout(stop, o.maxDurationMs);
  const trickle =
    o.kind === 'trickle'
      ? setInterval(() => {
          for (const [s, st] of open) if (st.sent < bytes.length && s.writable) s.write(bytes.subarray(st.sent, ++st.sent));
        }, o.trickleEveryMs ?? 5)
      : undefined;
  const openOne = (): void => {
    if (stopped || result.opened >= o.maxOpens) return;
    result.opened += 1;
    const s = netConnect({ host: '127.0.0.1', port: o.port, localAddress: o.localAddress ?? '127.0.0.1' });
    open.set(s, { sent: 0 });
    s.on('error', () => undefined);
    // What the server answers (its flight to a hello) is read and dropped, never answered.
    s.on('data', () => undefined);
    s.once('connect', () => {
      if (o.kind === 'header') s.write(Buffer.from([0x16, 0x03, 0x01]));
      if (o.kind === 'hello') s.write(hello);
    });
    s.once('close', () => {
      open.delete(s);
      if (stopped) return;
      result.cut += 1;
      if (result.cut === o.connections) onFull();
      openOne();
    });
  };
  for (let i = 0; i < o.connections; i++) openOne();
  return { stop, ended };
}

/** Runs the flood in a child process (options as a JSON line on its stdin; `stop` ends it). */
export function stalledFloodInChild(o: StalledFloodOptions): RunningFlood {
  // From the sources (vitest) run the built copy; from dist, this very file.
  const self = fileURLToPath(import.meta.url);
  const script = self.endsWith('.ts')
    ? self.replace(`${sep}test${sep}helpers${sep}stalled-flood.ts`, `${sep}dist${sep}test${sep}helpers${sep}stalled-flood.js`)
    : self;
  const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  let onFull = (): void => undefined;
  let onEnd = (_: Error): void => undefined;
  const full = new Promise<void>((resolve, reject) => {
    onFull = resolve;
    onEnd = reject;
  });
  // Awaited or not, a flood that ends early must not be an unhandled rejection.
  full.catch(() => undefined);
  // Told to stop once it has ended by itself: its stdin is closed then.
  child.stdin.on('error', () => undefined);
  const exited = new Promise<StalledFloodResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      onEnd(new Error(`the flood ended before the server was full (exit ${code}): ${out}`));
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as StalledFloodResult);
      else reject(new Error(`flood child exited with ${code}`));
    });
  });
  exited.catch(() => undefined);
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    if (out.includes('full\n')) onFull();
  });
  child.stdin.write(`${JSON.stringify(o)}\n`);
  return {
    full,
    stop: () => {
      child.stdin.end('stop\n');
      return exited;
    },
  };
}

// As a child: an options line on stdin, then `stop` (or the end of stdin) ends it; `full` and the counts on stdout.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  let input = '';
  let running: Promise<{ stop(): StalledFloodResult; ended: Promise<StalledFloodResult> }> | undefined;
  const end = () => void running?.then((f) => f.stop());
  process.stdin.on('data', (b: Buffer) => {
    input += b.toString();
    const nl = input.indexOf('\n');
    if (!running && nl >= 0) {
      running = stalledFlood(JSON.parse(input.slice(0, nl)) as StalledFloodOptions, () => process.stdout.write('full\n'));
      void running.then((f) => f.ended.then((r) => process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(0))));
    }
    if (running && input.slice(nl + 1).includes('stop')) end();
  });
  process.stdin.on('end', end);
}
