/**
 * Loopback ports: one nothing listens on, and whether a connection to one is up.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * A loopback port nothing listens on: bound on 127.0.0.1, then released. Another process can
 * take it before the caller binds it, so a caller that starts a server on it tries again on a
 * new port when it finds it taken (see redis.ts).
 */
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

/**
 * Whether some process of this machine has an established IPv4 connection to `port` on 127.0.0.1
 * (/proc/net/tcp). The kernel completes a connection to a listening server that is stopped
 * (SIGSTOP) too: a client's connection to it is up, and the client waits for an answer.
 */
export function connectedTo(port: number): boolean {
  const remote = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .some((l) => {
      const f = l.trim().split(/\s+/);
      // rem_address, then st: 01 is ESTABLISHED.
      return f[2] === remote && f[3] === '01';
    });
}
