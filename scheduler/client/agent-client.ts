/**
 * AgentClient: the typed mTLS client of gaxx-agent. It trusts only the fleet CA in the caller's
 * cert bundle, pins the agent's identity (see agent-identity.ts), puts deadlines on calls, and
 * turns every failure into a GaxxError (the agent's own code is rebuilt from the trailer).
 */
import { isIP } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { describeIdentity, revokedPeerSerials, sharedSecureContext, type CertBundle } from '../../certs/index.js';
import {
  GaxxError,
  grpcModules,
  loadProtos,
  type AgentGrpcClient,
  type AgentMethod,
  type ExecEvent__Output,
  type ExecRequest,
  type Exit__Output,
  type HealthClient,
  type InfoResponse__Output,
  type PutFileResponse__Output,
  type Started__Output,
  raceAbort,
} from '../../proto/index.js';
import { agentError } from './agent-errors.js';
import { checkAgentCertificate, grpcTarget, splitAddress, type AgentExpectation } from './agent-identity.js';
import { execStream } from './exec-stream.js';
import { getFile, putFile, transferCancelled, type Downloaded, type LocalFile, type TransferContext } from './file-transfer.js';

/** Largest gRPC message either side accepts; the agent uses the same limit. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Placeholder TLS server name when dialling an IP (Node refuses an IP as SNI: DEP0123). */
const IP_SERVER_NAME = 'gaxx-agent';

export interface AgentTarget {
  /** 'host:port' */
  address: string;
  expect?: AgentExpectation;
}

export interface AgentClientOptions {
  /** Default deadline per unary call (10 s). */
  deadlineMs?: number;
  /** How long a call waits for the connection before UNAVAILABLE (5 s). */
  connectTimeoutMs?: number;
  /** The agents' bearer token (GAXX_AGENT_TOKEN), sent on every call when set. */
  token?: string | undefined;
  /**
   * Keepalive ping period while a call is active (30 s) and how long a ping may go unanswered
   * (10 s): a stalled agent's streams fail after about their sum. Agents refuse pings closer
   * together than their `minPingIntervalMs` guard (10 s by default).
   */
  keepalive?: { timeMs: number; timeoutMs: number };
  /**
   * Reconnect at once when the connection that was up closes with no call on it (an agent ends
   * a connection idle for its `idleTimeoutMs` guard, 5 min by default), as long as this client
   * made a call within this many ms: a long-lived dispatcher (the scheduler daemon) then finds
   * its connections up when a run comes after a quiet spell, instead of paying every agent's
   * TLS handshake in that run. Nothing is retried after a failed connection. Default: off.
   */
  keepWarmMs?: number;
}

export interface ExecCallOptions {
  /** Aborting sends Cancel for the task and ends the stream after the agent's exit event. */
  signal?: AbortSignal;
  /** Deadline of the whole stream; default: the request's timeout plus 30 s, else none. */
  deadlineMs?: number;
}

/** The collected outcome of one Exec. */
export interface ExecResult {
  exit: Exit__Output;
  stdout: Buffer;
  stderr: Buffer;
  started: Started__Output;
}

export type HealthStatus = 'SERVING' | 'NOT_SERVING' | 'UNKNOWN' | 'SERVICE_UNKNOWN';

/** grpc-js, loaded on a client's first use: a command that only imports this module (its --help) loads none. */
const grpcJs = (): ReturnType<typeof grpcModules>['grpc'] => grpcModules().grpc;

/** Call credentials presenting `token` as `authorization: Bearer` (only ever over the mTLS channel). */
function bearer(token: string): grpc.CallCredentials {
  return grpcJs().credentials.createFromMetadataGenerator((_params, cb) => {
    const md = new (grpcJs().Metadata)();
    md.set('authorization', `Bearer ${token}`);
    cb(null, md);
  });
}

export class AgentClient {
  readonly address: string;
  /** The one channel (connection) every call of this client goes over. */
  private readonly channel: grpc.Channel;
  /** Per Agent method, a client of that method alone on the channel (made on first use). */
  private readonly methodClients = new Map<AgentMethod, AgentGrpcClient>();
  private healthClientOf: HealthClient | undefined;
  private readonly credentials: grpc.ChannelCredentials;
  private readonly target: string;
  private readonly deadlineMs: number;
  private readonly connectTimeoutMs: number;
  /** Set when the last handshake refused the agent's identity; explains the UNAVAILABLE that follows. */
  private identityError: GaxxError | undefined;
  /** When this client last started a call (ms): keepWarmMs counts from it. */
  private lastCallAt = 0;
  /** The certificate this client presents, named when an agent refuses it as revoked. */
  private readonly own: Pick<CertBundle, 'summary' | 'dir' | 'revokedHint'>;

  private constructor(target: AgentTarget, creds: CertBundle, opts: AgentClientOptions) {
    const { host, port } = splitAddress(target.address);
    this.address = target.address;
    this.deadlineMs = opts.deadlineMs ?? 10_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
    this.own = { summary: creds.summary, dir: creds.dir, revokedHint: creds.revokedHint };
    const channelCreds = grpcJs().credentials.createFromSecureContext(sharedSecureContext(creds), {
      checkServerIdentity: (_servername, cert) => {
        this.identityError = checkAgentCertificate(host, cert, target.expect, revokedPeerSerials(creds));
        return this.identityError;
      },
    });
    const credentials = opts.token ? grpcJs().credentials.combineChannelCredentials(channelCreds, bearer(opts.token)) : channelCreds;
    const options: grpc.ChannelOptions = {
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      // Long, quiet Exec streams stay up through NATs; pings only while a call is active.
      'grpc.keepalive_time_ms': opts.keepalive?.timeMs ?? 30_000,
      'grpc.keepalive_timeout_ms': opts.keepalive?.timeoutMs ?? 10_000,
      'grpc.keepalive_permit_without_calls': 0,
      // This client's channel is its own: nothing shared with clients holding other credentials.
      'grpc.use_local_subchannel_pool': 1,
      ...(isIP(host) ? { 'grpc.ssl_target_name_override': IP_SERVER_NAME } : {}),
    };
    this.credentials = credentials;
    this.target = grpcTarget(host, port);
    this.channel = new (grpcJs().Channel)(this.target, credentials, options);
    if (opts.keepWarmMs) this.keepWarm(opts.keepWarmMs);
  }

  /**
   * Watches the channel's state: a connection that was up (READY) and went IDLE (the agent
   * closed it for idleness, or the channel's own idle timer did) is opened again at once when a
   * call was made within `windowMs`. A connection that fails (TRANSIENT_FAILURE) is left alone.
   */
  private keepWarm(windowMs: number): void {
    const { READY, IDLE, SHUTDOWN } = grpcJs().connectivityState;
    const watch = (from: grpc.connectivityState): void => {
      if (from === SHUTDOWN) return;
      try {
        this.channel.watchConnectivityState(from, Infinity, () => {
          const now = this.channel.getConnectivityState(false);
          if (from === READY && now === IDLE && Date.now() - this.lastCallAt < windowMs) this.warm();
          watch(this.channel.getConnectivityState(false));
        });
      } catch {
        // Closed meanwhile: nothing to keep.
      }
    };
    watch(this.channel.getConnectivityState(false));
  }

  /**
   * A client of the Agent service's `method` alone, on this client's channel, made on its first
   * call: building the definitions of only the types a method uses keeps a command that calls
   * one method from paying for all of them (see proto/load.ts methodSubset), and Exec's are
   * plain code (proto/exec-codec.ts), so `gaxx exec` builds none.
   */
  private rpc(method: AgentMethod): AgentGrpcClient {
    this.lastCallAt = Date.now();
    let client = this.methodClients.get(method);
    if (!client) {
      client = new (loadProtos().agentMethod(method).gaxx.agent.v1.Agent)(this.target, this.credentials, { channelOverride: this.channel });
      this.methodClients.set(method, client);
    }
    return client;
  }

  /** The health client on the same channel, made on first use (exec never needs it). */
  private get healthClient(): HealthClient {
    this.lastCallAt = Date.now();
    this.healthClientOf ??= new (loadProtos().health.grpc.health.v1.Health)(this.target, this.credentials, { channelOverride: this.channel });
    return this.healthClientOf;
  }

  /** A client for one agent; no connection is made until the first call. */
  static connect(target: AgentTarget, creds: CertBundle, opts: AgentClientOptions = {}): AgentClient {
    return new AgentClient(target, creds, opts);
  }

  /** Runs a command and yields its events as they arrive: started, stdout/stderr chunks, exit. */
  exec(req: ExecRequest, opts: ExecCallOptions = {}): AsyncIterable<ExecEvent__Output> {
    return { [Symbol.asyncIterator]: () => this.execEvents(req, opts) };
  }

  /** Runs a command and collects its output and exit. */
  async run(req: ExecRequest, opts: ExecCallOptions = {}): Promise<ExecResult> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let started: Started__Output = { pid: 0, attached: false, replayed: false, fromStart: false, journalId: '' };
    let exit: Exit__Output | undefined;
    for await (const ev of this.exec(req, opts)) {
      if (ev.started) started = ev.started;
      else if (ev.stdout) out.push(ev.stdout);
      else if (ev.stderr) err.push(ev.stderr);
      else if (ev.exit) exit = ev.exit;
    }
    if (!exit) throw new GaxxError('UNAVAILABLE', `agent ${this.address} ended task ${req.taskId ?? ''} without an exit event`);
    return { exit, stdout: Buffer.concat(out), stderr: Buffer.concat(err), started };
  }

  /** Cancels a running task; false when the agent has no running task with that id. */
  async cancel(taskId: string): Promise<boolean> {
    return (await this.cancelTask(taskId)).found;
  }

  /**
   * Cancels a running task: `found` when it ran; else `finished` when the agent holds the result
   * of a task with that id that ended (an Exec of the same spec replays it).
   */
  async cancelTask(taskId: string): Promise<{ found: boolean; finished: boolean }> {
    await this.ready();
    const res = await new Promise<{ found: boolean; finished?: boolean }>((resolve, reject) => {
      this.rpc('Cancel').cancel({ taskId }, this.callOptions(), (e, r) => (e || !r ? reject(this.mapError(e)) : resolve(r)));
    });
    return { found: res.found, finished: res.finished === true };
  }

  /** The agent's version, host, capacity, load and certificate state. */
  async info(): Promise<InfoResponse__Output> {
    await this.ready();
    return new Promise((resolve, reject) => {
      this.rpc('Info').info({}, this.callOptions(), (e, r) => (e || !r ? reject(this.mapError(e)) : resolve(r)));
    });
  }

  /** Starts a renewal: the agent makes a new key (it never leaves the host) and returns a PEM request for it. */
  async createCsr(): Promise<string> {
    await this.ready();
    return new Promise((resolve, reject) => {
      this.rpc('CreateCsr').createCsr({}, this.callOptions(), (e, r) => (e || !r ? reject(this.mapError(e)) : resolve(r.csrPem)));
    });
  }

  /** The standard gRPC health status of the agent (service ''). */
  async health(): Promise<HealthStatus> {
    await this.ready();
    return new Promise((resolve, reject) => {
      this.healthClient.check({ service: '' }, this.callOptions(), (e, r) => (e || !r ? reject(this.mapError(e)) : resolve(r.status)));
    });
  }

  /**
   * Uploads `source` to `path` in the agent's data (or certs) area: bytes, or a local file
   * (localFile) read as it is sent; the agent verifies the sha256. The deadline grows with the size.
   */
  async putFile(
    path: string,
    source: Buffer | LocalFile,
    opts: { mode?: number; area?: 'FILE_AREA_DATA' | 'FILE_AREA_CERTS'; deadlineMs?: number; signal?: AbortSignal } = {},
  ): Promise<PutFileResponse__Output> {
    await this.readyUnless(opts.signal, () => transferCancelled(path, this.address));
    return putFile(this.rpc('PutFile'), path, source, opts, this.transfer(opts.deadlineMs));
  }

  /**
   * Downloads a file from the agent's data area, chunk by chunk into `write` (see file-transfer.ts:
   * never more than the header announced, nor over MAX_FILE_BYTES); CHECKSUM_MISMATCH when it does
   * not match its header. The deadline grows with the size the header announces.
   */
  async getFile(path: string, write: (chunk: Buffer) => Promise<void>, opts: { deadlineMs?: number; signal?: AbortSignal } = {}): Promise<Downloaded> {
    await this.readyUnless(opts.signal, () => transferCancelled(path, this.address));
    return getFile(this.rpc('GetFile'), path, write, this.transfer(opts.deadlineMs), opts.signal);
  }

  /**
   * Starts connecting now (TLS handshake, HTTP/2 settings) without making a call, so a first call
   * made later finds the connection up; a failure is left to that call.
   */
  warm(): void {
    this.channel.getConnectivityState(true);
  }

  /** Closes the channel; calls in flight fail with CANCELLED/UNAVAILABLE. */
  close(): void {
    this.channel.close();
  }

  private async *execEvents(req: ExecRequest, opts: ExecCallOptions): AsyncGenerator<ExecEvent__Output> {
    // Cancelled before, or while the connection came up: nothing was sent (after the send, the stream's Cancel stops it).
    const unsent = (): void => {
      if (opts.signal?.aborted) throw new GaxxError('CANCELLED', `task ${req.taskId ?? ''} cancelled before it started`);
    };
    unsent();
    // A stop while an agent that does not answer keeps the connection from coming up ends the wait at once.
    await this.readyUnless(opts.signal, () => new GaxxError('CANCELLED', `task ${req.taskId ?? ''} cancelled before it started`));
    unsent();
    const deadlineMs = opts.deadlineMs ?? (req.timeoutMs ? Number(req.timeoutMs) + 30_000 : undefined);
    // On a READY channel the request goes out at once, so a failure may come after the agent
    // started the task; on any other state grpc-js fails the call before sending anything.
    const sent = this.channel.getConnectivityState(false) === grpcJs().connectivityState.READY;
    const call = this.rpc('Exec').exec(req, deadlineMs === undefined ? {} : this.callOptions(deadlineMs));
    yield* execStream(call, { taskId: req.taskId ?? '', sent, signal: opts.signal, cancel: (id) => this.cancel(id), mapError: (e) => this.mapError(e) });
  }

  /**
   * Waits for the channel to leave IDLE/CONNECTING, at most connectTimeoutMs. A failed connection
   * is left to the call itself, which fails fast with the transport's reason.
   */
  private async ready(): Promise<void> {
    const channel = this.channel;
    const deadline = Date.now() + this.connectTimeoutMs;
    let state = channel.getConnectivityState(true);
    while (state === grpcJs().connectivityState.IDLE || state === grpcJs().connectivityState.CONNECTING) {
      const changed = await new Promise<boolean>((resolve) => channel.watchConnectivityState(state, deadline, (e) => resolve(!e)));
      if (!changed)
        throw new GaxxError(
          'UNAVAILABLE',
          `no gaxx-agent answering at ${this.address} within ${this.connectTimeoutMs} ms; is it running, and is the port open from here?`,
        );
      state = channel.getConnectivityState(true);
    }
    if (state === grpcJs().connectivityState.SHUTDOWN) throw new GaxxError('UNAVAILABLE', `client for agent ${this.address} is closed`);
  }

  /**
   * ready(), given up with `stopped()` (CANCELLED) once `signal` is aborted: a task or transfer
   * stopped by Ctrl-C does not first wait out the connect timeout of an agent that does not answer.
   */
  private async readyUnless(signal: AbortSignal | undefined, stopped: () => GaxxError): Promise<void> {
    if ((await raceAbort(this.ready(), [signal])) === 'stop') throw stopped();
  }

  private callOptions(deadlineMs = this.deadlineMs): grpc.CallOptions {
    return { deadline: Date.now() + deadlineMs };
  }

  /** A transfer's context: a fixed deadline when the caller gave one, else at least a minute plus a second per MiB. */
  private transfer(fixedDeadlineMs: number | undefined): TransferContext {
    const base = Math.max(this.deadlineMs, 60_000);
    return {
      address: this.address,
      deadlineMs: (bytes) => fixedDeadlineMs ?? base + Math.ceil(bytes / (1024 * 1024)) * 1000,
      mapError: (e) => this.mapError(e),
    };
  }

  /** Any failure as a GaxxError: the agent's trailer code, a pinned-identity refusal, or the transport's. */
  private mapError(e: unknown): GaxxError {
    const err = agentError(e, this.address, this.identityError);
    // A revoked agent is refused here, at the handshake (identityError); the agent's own
    // CERT_REVOKED is about the certificate this client presented: said so, lest it read as
    // the agent's fault, with what to do about it when the bundle's maker knows.
    if (err.code !== 'CERT_REVOKED' || err === this.identityError) return err;
    const { summary, dir, revokedHint } = this.own;
    const mine = `this client's certificate (${describeIdentity(summary.identity)}, serial ${summary.serial}, from ${dir})`;
    return new GaxxError('CERT_REVOKED', `${err.message}: the agent refuses ${mine} as revoked${revokedHint ? `; ${revokedHint}` : ''}`, {
      cause: err,
      ...(err.details ? { details: err.details } : {}),
    });
  }
}
