/**
 * The RPC baseline's server: a bare grpc-js server over mTLS (fleet CA, client certificate
 * required) serving only grpc.health.v1 Check, with none of the agent's guards. The agent's own
 * unary path is rate-limited per identity by design, so it cannot be the bare-RPC baseline.
 * It runs in the bench process: its CPU competes with the client's, which the agent's does not.
 */
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadProtos } from '../../proto/index.js';

export interface BareServer {
  address: string;
  close(): Promise<void>;
}

/** Serves Health.Check over mTLS on a free loopback port with the cert dir's cert, key and CA. */
export async function startBareServer(certDir: string): Promise<BareServer> {
  const read = (f: string) => readFileSync(join(certDir, f));
  const server = new grpc.Server();
  const { health } = loadProtos();
  server.addService(health.grpc.health.v1.Health.service, {
    Check: (_call: unknown, cb: grpc.sendUnaryData<{ status: string }>) => cb(null, { status: 'SERVING' }),
    Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
  });
  const creds = grpc.ServerCredentials.createSsl(read('ca.pem'), [{ cert_chain: read('cert.pem'), private_key: read('key.pem') }], true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
  return {
    address: `127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
