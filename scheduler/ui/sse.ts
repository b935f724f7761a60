/**
 * Server-sent event streams: each client gets the whole picture on connect, then each change
 * as an event. A client that stops reading (its buffer past MAX_BUFFERED) is dropped rather
 * than buffered without bound; it reconnects and starts again from a fresh picture. A stream
 * may carry a view (e.g. only some fleets): each event's value goes through it before it is
 * sent there, and an event whose view is undefined is not sent.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

const MAX_CLIENTS = 32;
const MAX_BUFFERED = 8 * 1024 * 1024;
const KEEPALIVE_MS = 15_000;

/** What one stream sees of an event's value (undefined: nothing). */
export type StreamView = (event: string, value: unknown) => unknown;

/** The connected event streams. */
export class EventHub {
  private readonly clients = new Map<ServerResponse, StreamView | undefined>();
  private readonly keepalive: NodeJS.Timeout;

  constructor() {
    this.keepalive = setInterval(() => this.comment('keepalive'), KEEPALIVE_MS);
    this.keepalive.unref();
  }

  /** Number of open streams. */
  get size(): number {
    return this.clients.size;
  }

  /** Opens a stream for `res` and sends `initial` events first (their values as `view` shows them). */
  add(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>, initial: () => Array<[string, unknown]>, view?: StreamView): void {
    if (this.clients.size >= MAX_CLIENTS) {
      res.writeHead(503, { ...headers, 'retry-after': '5' }).end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    for (const [event, value] of initial()) {
      const shown = view ? view(event, value) : value;
      if (shown !== undefined) res.write(frame(event, JSON.stringify(shown)));
    }
    this.clients.set(res, view);
    const drop = (): void => void this.clients.delete(res);
    req.on('close', drop);
    res.on('error', drop);
  }

  /** Sends one event to every stream; `data` is `value` as JSON (made once for the streams without a view). */
  send(event: string, value: unknown, data = JSON.stringify(value)): void {
    const f = frame(event, data);
    for (const [res, view] of this.clients) {
      if (res.writableLength > MAX_BUFFERED) {
        this.clients.delete(res);
        res.destroy();
        continue;
      }
      if (!view) res.write(f);
      else {
        const shown = view(event, value);
        if (shown !== undefined) res.write(frame(event, JSON.stringify(shown)));
      }
    }
  }

  private comment(text: string): void {
    for (const res of this.clients.keys()) res.write(`: ${text}\n\n`);
  }

  /** Ends every stream. */
  close(): void {
    clearInterval(this.keepalive);
    for (const res of this.clients.keys()) res.end();
    this.clients.clear();
  }
}

/** One event; `data` is JSON (no newlines), so one data line. */
function frame(event: string, data: string): string {
  return `event: ${event}\ndata: ${data.replace(/\n/g, '\\n')}\n\n`;
}
