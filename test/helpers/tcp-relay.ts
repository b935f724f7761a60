/**
 * A TCP relay on loopback in front of an agent: a client dialled to `address` talks to the agent
 * `to` names (set `to` to send the next connections to another agent), `cut()` breaks every
 * connection it carries. Each connection counts the bytes its client sent toward the agent, so a
 * test can tell that a request went out on a given connection, though the agent behind it is
 * stopped and reads nothing (bytes on any other connection to the agent's port, such as a closed
 * client's late reconnect, say nothing of that request). `delayMs` holds every chunk from the
 * agent that long before the client gets it (in order): each answer then takes at least that long.
 * `holdWhen` makes a server that stops answering mid-connection (stopped, paused, cut off without
 * a reset): once a chunk from the client matches it, that connection carries nothing more either
 * way (the chunk included) and stays open. The server may be any TCP service on loopback (Redis).
 */
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import type { AgentProcess } from './agent.js';

/** One connection the relay carries. */
export interface RelayedConnection {
  /** Bytes its client sent toward the agent so far. */
  sent: number;
  /** Whether it carries nothing more (`holdWhen` matched). */
  held: boolean;
}

/** What a relay forwards to: a server on loopback at `port` (an agent, a redis-server). */
export type RelayTarget = Pick<AgentProcess, 'port'>;

export class TcpRelay {
  address = '';
  to: RelayTarget;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly open = new Set<RelayedConnection>();

  constructor(to: RelayTarget, opts: { delayMs?: number; holdWhen?: (chunk: Buffer) => boolean } = {}) {
    this.to = to;
    this.server = createServer((down) => {
      const up = tcpConnect(this.to.port, '127.0.0.1');
      const conn: RelayedConnection = { sent: 0, held: false };
      this.open.add(conn);
      down.on('data', (b: Buffer) => {
        conn.sent += b.length;
      });
      for (const s of [down, up]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          this.open.delete(conn);
          down.destroy();
          up.destroy();
        });
      }
      const holdWhen = opts.holdWhen;
      if (holdWhen === undefined) down.pipe(up);
      else
        down.on('data', (b: Buffer) => {
          if (!conn.held && holdWhen(b)) conn.held = true;
          if (!conn.held) up.write(b);
        });
      const delayMs = opts.delayMs;
      if (delayMs === undefined && holdWhen === undefined) up.pipe(down);
      else {
        const pass = (b: Buffer): boolean => down.destroyed || conn.held || down.write(b);
        up.on('data', (b: Buffer) => void (delayMs === undefined ? pass(b) : setTimeout(() => pass(b), delayMs)));
      }
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const a = this.server.address();
    if (a === null || typeof a === 'string') throw new Error('relay has no port');
    this.address = `127.0.0.1:${a.port}`;
    return this;
  }

  /** The connections it carries now. */
  connections(): RelayedConnection[] {
    return [...this.open];
  }

  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Whether any of `conns` has sent bytes toward the agent since this was called. */
export function sentSince(conns: readonly RelayedConnection[]): () => boolean {
  const at = conns.map((c) => c.sent);
  return () => conns.some((c, i) => c.sent > (at[i] ?? Infinity));
}
