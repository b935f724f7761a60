// AgentClient.exec hands the exit event over as it arrives, not once the call's trailers follow,
// and a caller that stops at the exit leaves the call to be read to its end, not reset. The
// agent's stand-in is a plain Node HTTP/2 server over real mTLS (the agent's certificate) that
// answers Exec as gRPC does (the Agent service's own serializers from the real .proto): started
// and exit, then the trailers only when the test lets it. HTTP/2 shows what grpc-js's server
// does not: whether the client reset the stream (RST_STREAM) or let it end.
import { once } from 'node:events';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { constants as h2, createSecureServer, type Http2SecureServer, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadCertDir } from '../../certs/index.js';
import { loadProtos } from '../../proto/index.js';
import { AgentClient } from '../../scheduler/client/index.js';
import { makePki, type Pki } from '../helpers/pki.js';

let dir: string;
let pki: Pki;
let server: Http2SecureServer;
let port: number;

/** One Exec the stand-in served: its end is held until `release`; how its stream closed. */
interface Held {
  taskId: string;
  release(): void;
  /** The stream's RST_STREAM code once it closed (0: ended without a reset). */
  closed: Promise<number>;
}
const served: Held[] = [];
let arrived: (h: Held) => void = () => undefined;

/** A gRPC message frame: not compressed, the length, the bytes. */
function frame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

function serveExec(stream: ServerHttp2Stream, request: Buffer): void {
  const exec = loadProtos().agent.gaxx.agent.v1.Agent.service.Exec;
  const { taskId } = exec.requestDeserialize(request.subarray(5)) as { taskId: string };
  const closed = once(stream, 'close').then(() => stream.rstCode);
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto' }, { waitForTrailers: true });
  stream.write(frame(exec.responseSerialize({ started: { pid: 4242 } })));
  stream.write(frame(exec.responseSerialize({ exit: { code: 3 } })));
  const held: Held = { taskId, release: () => stream.end(), closed };
  served.push(held);
  // Tasks named hold-* have their trailers held until the test releases them.
  if (taskId.startsWith('hold-')) arrived(held);
  else held.release();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-exec-end-'));
  pki = await makePki(dir);
  const file = (f: string) => readFileSync(join(pki.agent.dir, f));
  server = createSecureServer({
    key: file('key.pem'),
    cert: file('cert.pem'),
    ca: file('ca.pem'),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ['h2'],
  });
  server.on('stream', (stream) => {
    const parts: Buffer[] = [];
    stream.on('data', (b: Buffer) => parts.push(b));
    stream.on('end', () => serveExec(stream, Buffer.concat(parts)));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('the exit event comes before the call has ended, and a caller that stops there leaves the call to end, not reset', async () => {
  const client = AgentClient.connect({ address: `127.0.0.1:${port}`, expect: { fleet: 'test', host: 'h1' } }, loadCertDir(pki.clients.operator.dir));
  try {
    const holding = new Promise<Held>((r) => (arrived = r));
    let exitCode: number | undefined;
    // Stops at the exit, as the scheduler's dispatch does (exec-once.ts); the trailers are held.
    for await (const ev of client.exec({ taskId: 'hold-1', argv: ['true'] })) {
      if (ev.exit) {
        exitCode = ev.exit.code;
        break;
      }
    }
    expect(exitCode).toBe(3);
    const held = await holding;
    held.release();
    expect(await held.closed).toBe(h2.NGHTTP2_NO_ERROR);
    // A caller that reads on gets the call's end, as before.
    const r = await client.run({ taskId: 'read-on-1', argv: ['true'] });
    expect(r.exit.code).toBe(3);
    expect(await served.find((s) => s.taskId === 'read-on-1')?.closed).toBe(h2.NGHTTP2_NO_ERROR);
  } finally {
    client.close();
  }
});
