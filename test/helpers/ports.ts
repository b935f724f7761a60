/**
 * A loopback port nothing listens on: bound on 127.0.0.1, then released. Another process can
 * take it before the caller binds it, so a caller that starts a server on it tries again on a
 * new port when it finds it taken (see redis.ts).
 */
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
