/**
 * A stand-in gaxx-agent: a grpc-js server over real mTLS presenting the certificate of a cert
 * dir (the fleet CA's, so TLS accepts it; revoked, say), that records every call it gets and
 * answers Exec, PutFile, Info and Health as an agent would. What a client refuses shows as
 * calls that never arrive. GetFile lies when told to: its header announces fewer bytes than it
 * then sends, so a client's refusal shows as how much it took before it cancelled. Told to hold,
 * GetFile stops sending and PutFile stops reading part-way, keeping the call open until the
 * client ends it: a transfer caught in the middle, for as long as a test needs.
 */
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { loadProtos } from '../../proto/index.js';

/** One call the stand-in received. */
export interface StandInCall {
  method: 'Exec' | 'PutFile' | 'GetFile' | 'Info' | 'Health';
  /** Exec: the env names and the stdin size; PutFile: the path; GetFile: the path and how many bytes went out before the call ended. */
  detail: string;
}

export interface StandInAgent {
  /** 'host:port' */
  address: string;
  calls: StandInCall[];
  /** Resolves with the bytes GetFile sent once its call ended, by its end or the client's cancel. */
  getFileEnded: Promise<number>;
  /** Resolves once a holding GetFile has sent its bytes and waits (GetFileLie.hold). */
  getFileHeld: Promise<void>;
  /** Resolves once a holding PutFile has its header and reads no more (putFile.hold). */
  putFileHeld: Promise<void>;
  /** Resolves with how a held PutFile ended: 'cancelled' by the client, or 'ended' (all sent). */
  putFileEnded: Promise<'cancelled' | 'ended'>;
  close(): Promise<void>;
  /** Ends every connection at once, calls in the middle too: an agent that died. */
  kill(): void;
}

/**
 * GetFile's lie: the size its header announces, and the zero bytes it sends (at most, while the
 * client takes them); with `hold`, it then sends nothing more and keeps the call open.
 */
export interface GetFileLie {
  announce: number;
  send: number;
  hold?: boolean;
}

/** Streams `lie.send` zero bytes under a header announcing `lie.announce`, waiting whenever the client stops taking them. */
async function lyingGetFile(call: grpc.ServerWritableStream<{ path: string }, object>, lie: GetFileLie, held: () => void): Promise<number> {
  let cancelled = false;
  const cancel = once(call, 'cancelled').catch(() => undefined);
  call.on('cancelled', () => (cancelled = true));
  // Never compared: what is sent is no file the header could describe.
  call.write({ header: { size: lie.announce, mode: 0o644, sha256: '0'.repeat(64) } });
  const chunk = Buffer.alloc(64 * 1024);
  let sent = 0;
  while (sent < lie.send && !cancelled) {
    sent += chunk.length;
    if (!call.write({ data: chunk })) await Promise.race([once(call, 'drain'), cancel]);
  }
  if (lie.hold && !cancelled) {
    held();
    await cancel;
  }
  if (!cancelled) call.end();
  return sent;
}

/** Starts a stand-in on `host` (a loopback address its certificate names) and a free port. */
export async function startStandInAgent(
  certDir: string,
  host = '127.0.0.1',
  opts: { getFile?: GetFileLie; putFile?: { hold: boolean } } = {},
): Promise<StandInAgent> {
  const { agent, health } = loadProtos();
  const calls: StandInCall[] = [];
  let getFileEnded = (_sent: number): void => undefined;
  const ended = new Promise<number>((r) => (getFileEnded = r));
  let getFileHeld = (): void => undefined;
  const getHeld = new Promise<void>((r) => (getFileHeld = r));
  let putFileHeld = (): void => undefined;
  const putHeld = new Promise<void>((r) => (putFileHeld = r));
  let putFileEnded = (_how: 'cancelled' | 'ended'): void => undefined;
  const putEnded = new Promise<'cancelled' | 'ended'>((r) => (putFileEnded = r));
  const server = new grpc.Server();
  server.addService(agent.gaxx.agent.v1.Agent.service, {
    Exec(call: grpc.ServerWritableStream<{ env: Record<string, string>; stdin?: Buffer }, object>) {
      calls.push({ method: 'Exec', detail: `env ${Object.keys(call.request.env ?? {}).join(',')} stdin ${call.request.stdin?.length ?? 0}` });
      call.write({ started: { pid: 4242 } });
      call.write({ stdout: Buffer.from('from the stand-in\n') });
      call.write({ exit: { code: 0, durationMs: 1 } });
      call.end();
    },
    PutFile(call: grpc.ServerReadableStream<{ header?: { path: string; size: number; sha256: string } }, object>, cb: grpc.sendUnaryData<object>) {
      let header: { path: string; size: number; sha256: string } | undefined;
      call.on('data', (c: { header?: { path: string; size: number; sha256: string } }) => {
        header ??= c.header ?? undefined;
        if (!opts.putFile?.hold) return;
        // Read no more: the client's sending waits on the stream's flow control.
        call.pause();
        putFileHeld();
      });
      call.on('cancelled', () => {
        calls.push({ method: 'PutFile', detail: `${header?.path ?? ''} cancelled` });
        putFileEnded('cancelled');
      });
      call.on('end', () => {
        putFileEnded('ended');
        calls.push({ method: 'PutFile', detail: header?.path ?? '' });
        cb(null, { path: header?.path ?? '', size: header?.size ?? 0, sha256: header?.sha256 ?? '' });
      });
    },
    GetFile(call: grpc.ServerWritableStream<{ path: string }, object>) {
      const lie = opts.getFile ?? { announce: 0, send: 0 };
      void lyingGetFile(call, lie, getFileHeld).then((sent) => {
        calls.push({ method: 'GetFile', detail: `${call.request.path} sent ${sent}` });
        getFileEnded(sent);
      });
    },
    Info(_call: unknown, cb: grpc.sendUnaryData<object>) {
      calls.push({ method: 'Info', detail: '' });
      cb(null, { version: 'stand-in', capacity: 1 });
    },
  });
  server.addService(health.grpc.health.v1.Health.service, {
    Check(_call: unknown, cb: grpc.sendUnaryData<object>) {
      calls.push({ method: 'Health', detail: '' });
      cb(null, { status: 'SERVING' });
    },
  });
  const file = (f: string) => readFileSync(join(certDir, f));
  const creds = grpc.ServerCredentials.createSsl(file('ca.pem'), [{ private_key: file('key.pem'), cert_chain: file('cert.pem') }], true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(`${host}:0`, creds, (e, p) => (e ? reject(e) : resolve(p))));
  return {
    address: `${host}:${port}`,
    calls,
    getFileEnded: ended,
    getFileHeld: getHeld,
    putFileHeld: putHeld,
    putFileEnded: putEnded,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
    kill: () => server.forceShutdown(),
  };
}
