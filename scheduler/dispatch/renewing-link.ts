/**
 * A link whose credentials may be replaced while it is used: each call first asks the source
 * for the bundle in force (CredentialSource: a stat or two when nothing changed), and once that
 * is another bundle (the scheduler certificate was revoked and re-issued, or renewed) the call
 * goes over a new client made with it. An agent refuses a revoked client certificate on every
 * call, on open connections too, so the old client is of no more use; it is closed once the
 * calls still out on it end (an Exec that was running when the swap came is read to its end).
 */
import type { CertBundle, CredentialSource } from '../../certs/index.js';
import type { ExecEvent__Output, ExecRequest, InfoResponse__Output } from '../../proto/index.js';
import type { AgentLink } from './agent-pool.js';

/** A client made with one bundle, and the calls out on it. */
interface Held {
  link: AgentLink;
  bundle: CertBundle;
  calls: number;
  /** Replaced: closed once `calls` is back to 0. */
  retired: boolean;
  /** Closed (once). */
  shut: boolean;
}

function shut(h: Held): void {
  if (h.shut) return;
  h.shut = true;
  h.link.close();
}

export class RenewingLink implements AgentLink {
  private held: Held | undefined;
  private closed = false;

  constructor(
    private readonly source: CredentialSource,
    /** A client with a bundle (AgentClient.connect, the endpoint and options bound). */
    private readonly connect: (bundle: CertBundle) => AgentLink,
  ) {}

  /** The client of the bundle in force, made anew when the bundle changed; its call counted until `done`. */
  private async take(): Promise<Held> {
    const bundle = await this.source.current();
    let h = this.held;
    if (!h || h.bundle !== bundle) {
      if (h) this.retire(h);
      h = { link: this.connect(bundle), bundle, calls: 0, retired: false, shut: false };
      this.held = h;
      // Closed while the bundle was asked for: the new client goes as the others did.
      if (this.closed) shut(h);
    }
    h.calls += 1;
    return h;
  }

  private done(h: Held): void {
    h.calls -= 1;
    if (h.retired && h.calls === 0) shut(h);
  }

  private retire(h: Held): void {
    h.retired = true;
    if (h.calls === 0) shut(h);
  }

  private async call<T>(fn: (link: AgentLink) => Promise<T>): Promise<T> {
    const h = await this.take();
    try {
      return await fn(h.link);
    } finally {
      this.done(h);
    }
  }

  exec(req: ExecRequest, opts?: { signal?: AbortSignal; deadlineMs?: number }): AsyncIterable<ExecEvent__Output> {
    return { [Symbol.asyncIterator]: () => this.execEvents(req, opts) };
  }

  private async *execEvents(req: ExecRequest, opts?: { signal?: AbortSignal; deadlineMs?: number }): AsyncGenerator<ExecEvent__Output> {
    const h = await this.take();
    try {
      yield* h.link.exec(req, opts);
    } finally {
      this.done(h);
    }
  }

  info(): Promise<InfoResponse__Output> {
    return this.call((l) => l.info());
  }

  health(): Promise<string> {
    return this.call((l) => l.health());
  }

  cancel(taskId: string): Promise<boolean> {
    return this.call((l) => l.cancel(taskId));
  }

  cancelTask(taskId: string): Promise<{ found: boolean; finished: boolean }> {
    return this.call((l) => (l.cancelTask ? l.cancelTask(taskId) : l.cancel(taskId).then((found) => ({ found, finished: false }))));
  }

  /** Starts connecting with the bundle in force (asked first: a warm connection with a revoked certificate would serve nothing). */
  warm(): void {
    // A failure (a client that cannot even be made) is left to the first call, as AgentClient.warm leaves it.
    this.take().then(
      (h) => {
        if (!this.closed) h.link.warm();
        this.done(h);
      },
      () => undefined,
    );
  }

  close(): void {
    this.closed = true;
    if (this.held) shut(this.held);
  }
}
