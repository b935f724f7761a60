/**
 * The HTTP side of a cloud provider: bearer auth, JSON in and out, pacing, bounded retries of
 * 429/5xx/network failures honouring Retry-After, and one mapping of failures to GaxxError.
 * A request that is not idempotent (an instance creation) is sent again only once a lookup
 * found that the lost attempt did nothing. The token is held here and sent only in the
 * Authorization header; it never reaches a message, a log or an error.
 */
import { GaxxError, type ErrorCode } from '../../proto/index.js';
import { onAbort } from '../abort-fanout.js';
import { DEFAULT_RETRY, parseRetryAfter, retryDelay, type Pacer, type RetryPolicy } from './pacer.js';
import type { Clock } from './types.js';

/** One request. `pacers` are all passed (e.g. the general one and the create one). */
export interface ApiRequest {
  method: 'GET' | 'POST' | 'DELETE' | 'PUT';
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  pacers?: Pacer[];
  signal?: AbortSignal | undefined;
}

/** A parsed answer: the status and the JSON body (undefined for an empty body). */
export interface ApiResponse {
  status: number;
  body: unknown;
}

export interface ApiClientOptions {
  /** Provider name for messages ('linode'). */
  name: string;
  baseUrl: string;
  token: string | undefined;
  clock: Clock;
  retry?: RetryPolicy;
  /** Extracts the provider's own error text from an error body. */
  describeError: (body: unknown) => string | undefined;
  /** Per-request timeout in real ms (default 30 s). */
  timeoutMs?: number;
}

/** HTTP statuses answered with a retry. */
function retryable(status: number): boolean {
  return status === 429 || status >= 500;
}

/**
 * The code of a provider's HTTP failure. A 400 or 422 is the provider refusing what gaxx asked
 * (a region or plan it does not have, a quota): FAILED_PRECONDITION, not a usage error of the
 * command line.
 */
export function codeForStatus(status: number): ErrorCode {
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'PERMISSION_DENIED';
  if (status === 404) return 'NOT_FOUND';
  if (status === 409) return 'ALREADY_EXISTS';
  if (status === 429) return 'RESOURCE_EXHAUSTED';
  if (status >= 500) return 'UNAVAILABLE';
  return 'FAILED_PRECONDITION';
}

type Attempt = { kind: 'answer'; status: number; text: string; retryAfterMs: number | undefined } | { kind: 'failed'; error: GaxxError };

/** A small JSON-over-HTTP client for one provider. */
export class ApiClient {
  private readonly retry: RetryPolicy;
  /** Counters for benches and progress: answers retried, by status. */
  readonly stats = { requests: 0, retries: 0, rateLimited: 0 };

  constructor(private readonly opts: ApiClientOptions) {
    this.retry = opts.retry ?? DEFAULT_RETRY;
  }

  /** Sends the request; resolves on 2xx (and 404 when `allow404`), throws GaxxError otherwise. */
  request(req: ApiRequest, allow404 = false): Promise<ApiResponse> {
    return this.retrying(req, allow404, (res) => res, undefined);
  }

  /**
   * Sends a request whose repeat would act twice (an instance creation). After an uncertain
   * failure (a 5xx answer, a reset, a timeout: the provider may have acted and the answer been
   * lost) `find` looks for what the lost attempt made; what it finds is the result, and only
   * when it finds nothing is the request sent again. A 429 (refused before acting) is retried as
   * any other request. `read` turns a 2xx answer into the result.
   */
  requestOnce<T>(req: ApiRequest, read: (res: ApiResponse) => T, find: () => Promise<T | undefined>): Promise<T> {
    return this.retrying(req, false, read, find);
  }

  private async retrying<T>(req: ApiRequest, allow404: boolean, read: (res: ApiResponse) => T, find: (() => Promise<T | undefined>) | undefined): Promise<T> {
    if (!this.opts.token) throw new GaxxError('UNAUTHENTICATED', `no ${this.opts.name} API token (set it in secrets.env or the environment)`);
    let lastError: GaxxError | undefined;
    let uncertain = false;
    for (let attempt = 1; attempt <= this.retry.attempts; attempt++) {
      if (attempt > 1) this.stats.retries++;
      if (uncertain && find) {
        const found = await find();
        if (found !== undefined) return found;
      }
      const res = await this.paced(req);
      if (res.kind === 'answer') {
        if ((res.status >= 200 && res.status < 300) || (allow404 && res.status === 404)) return read(this.parse(req, res));
        lastError = this.httpError(req, res.status, res.text);
        if (!retryable(res.status)) throw lastError;
        if (res.status === 429) this.stats.rateLimited++;
        uncertain = res.status !== 429;
      } else {
        lastError = res.error;
        uncertain = true;
      }
      if (attempt < this.retry.attempts)
        await this.opts.clock.sleep(retryDelay(attempt, this.retry, res.kind === 'answer' ? res.retryAfterMs : undefined), req.signal);
    }
    // The last attempt may have acted too.
    if (uncertain && find) {
      const found = await find();
      if (found !== undefined) return found;
    }
    throw new GaxxError(lastError?.code ?? 'UNAVAILABLE', `${lastError?.message ?? 'request failed'} (gave up after ${this.retry.attempts} attempts)`, {
      cause: lastError,
    });
  }

  private async paced(req: ApiRequest): Promise<Attempt> {
    const send = () => this.send(req);
    const pacers = req.pacers ?? [];
    // Nest the pacers so a request holds a token of each while it runs.
    const run = pacers.reduceRight<() => ReturnType<typeof send>>((inner, p) => () => p.run(inner, req.signal), send);
    return run();
  }

  private async send(req: ApiRequest): Promise<Attempt> {
    this.stats.requests++;
    const url = new URL(this.opts.baseUrl.replace(/\/+$/, '') + req.path);
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    // One controller per request, its timer and its tie to the caller's signal both undone when
    // the request ends (AbortSignal.any left a listener on the caller's signal per request).
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, this.opts.timeoutMs ?? 30_000);
    const untie = onAbort(req.signal, (reason) => abort.abort(reason));
    const signal = abort.signal;
    try {
      const res = await fetch(url, {
        method: req.method,
        headers: {
          authorization: `Bearer ${this.opts.token ?? ''}`,
          accept: 'application/json',
          ...(req.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...req.headers,
        },
        body: req.body === undefined ? undefined : JSON.stringify(req.body),
        signal,
      });
      const text = await res.text();
      return { kind: 'answer', status: res.status, text, retryAfterMs: parseRetryAfter(res.headers.get('retry-after')) };
    } catch (e) {
      if (req.signal?.aborted) throw new GaxxError('CANCELLED', 'cancelled', { cause: e });
      const what = timedOut ? 'timed out' : `failed (${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message})`;
      return { kind: 'failed', error: new GaxxError('UNAVAILABLE', `${this.opts.name} API ${req.method} ${req.path} ${what}`, { cause: e }) };
    } finally {
      clearTimeout(timer);
      untie();
    }
  }

  private parse(req: ApiRequest, res: { status: number; text: string }): ApiResponse {
    if (res.text.trim() === '') return { status: res.status, body: undefined };
    try {
      return { status: res.status, body: JSON.parse(res.text) };
    } catch (e) {
      throw new GaxxError('UNAVAILABLE', `${this.opts.name} API ${req.method} ${req.path} answered ${res.status} with malformed JSON`, { cause: e });
    }
  }

  private httpError(req: ApiRequest, status: number, text: string): GaxxError {
    let detail: string | undefined;
    try {
      detail = this.opts.describeError(JSON.parse(text));
    } catch {
      detail = undefined;
    }
    const hint = status === 401 ? ' (check the API token)' : '';
    return new GaxxError(codeForStatus(status), `${this.opts.name} API ${req.method} ${req.path}: HTTP ${status}${detail ? `: ${detail}` : ''}${hint}`, {
      details: { status },
    });
  }
}
