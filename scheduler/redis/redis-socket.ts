/** One-line exchanges with a redis-server on its unix socket, without a Redis client (none is loaded for them). */
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { raceAbort } from '../../proto/index.js';

/** Sends one inline command to the socket; resolves with the first reply line, or null. */
export function socketCommand(path: string, command: string, timeoutMs = 1000): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = createConnection({ path });
    let buf = '';
    const finish = (v: string | null): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    sock.on('connect', () => sock.write(`${command}\r\n`));
    sock.on('data', (d) => {
      buf += d.toString();
      const i = buf.indexOf('\r\n');
      if (i >= 0) finish(buf.slice(0, i));
    });
    sock.on('error', () => finish(null));
    sock.on('close', () => finish(buf || null));
  });
}

/** Sends `INFO <section>` to the socket; resolves with its fields, or an empty map. */
export function socketInfo(path: string, section: string, timeoutMs = 1000): Promise<Map<string, string>> {
  return new Promise((resolve) => {
    const sock = createConnection({ path });
    const parts: Buffer[] = [];
    const finish = (): void => {
      clearTimeout(timer);
      sock.destroy();
      const text = Buffer.concat(parts).toString();
      const fields = new Map<string, string>();
      if (!text.startsWith('$')) return resolve(fields);
      for (const line of text.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) fields.set(line.slice(0, i), line.slice(i + 1));
      }
      resolve(fields);
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('connect', () => sock.write(`INFO ${section}\r\n`));
    sock.on('data', (d) => {
      parts.push(d);
      // A bulk reply: $<length>\r\n<length bytes>\r\n.
      const head = Buffer.concat(parts);
      const eol = head.indexOf('\r\n');
      if (eol > 0 && head.length >= eol + 2 + Number(head.subarray(1, eol).toString()) + 2) finish();
    });
    sock.on('error', finish);
    sock.on('close', finish);
  });
}

/**
 * Whether the server on `socketPath` answers PING before `until`: asked again and again, each
 * ask given up to `askMs`, `pause()` ms apart, until `gone()` says no server will answer, or
 * `stop` aborts (false at once: the caller says why).
 */
export async function answersBy(
  socketPath: string,
  until: number,
  askMs: number,
  pause: () => number,
  gone: () => boolean = () => false,
  stop?: AbortSignal,
): Promise<boolean> {
  while (Date.now() < until && !stop?.aborted) {
    const answer = await raceAbort(socketCommand(socketPath, 'PING', Math.min(askMs, Math.max(1, until - Date.now()))), [stop]);
    if (answer === '+PONG') return true;
    if (answer === 'stop' || gone()) return false;
    await raceAbort(sleep(pause()), [stop]);
  }
  return false;
}
