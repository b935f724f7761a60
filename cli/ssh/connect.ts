/**
 * SSH connections to fleet hosts (ssh2): Ed25519 user keys, a host key verified on every
 * connection (ssh2 accepts any key without a hostVerifier), Nagle off (each exec costs ~48 ms
 * instead of ~2 ms with it on), curve25519-sha256 preferred (OpenSSH 9's sntrup761 default costs
 * ~80 ms of client CPU per connection), and the handshake retried with backoff until a deadline,
 * since a fresh VM answers late. A host key mismatch is final: never retried, nothing sent.
 */
import ssh2 from 'ssh2';
import { counted, GaxxError, isGaxxError } from '../../proto/index.js';
import { onAbort } from '../abort-fanout.js';
import { describeKeyBlob, type KnownHosts } from './known-hosts.js';
import { fingerprintOf } from './keys.js';

/** How a host's key is checked. */
export type HostKeyPolicy =
  /** The exact OpenSSH public key (`ssh-ed25519 AAAA...`) gaxx generated and pinned through cloud-init. */
  | { kind: 'pinned'; publicKey: string }
  /** gaxx's and the user's known_hosts; an unknown host is trusted (and recorded) only with acceptNew. */
  | { kind: 'known-hosts'; knownHosts: KnownHosts; acceptNew: boolean; fleet?: string };

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** OpenSSH private key (Ed25519). */
  privateKey: string | Buffer;
}

export interface ConnectOptions {
  /** Give up retrying after this long (default 120 s). */
  deadlineMs?: number;
  /** One attempt's handshake timeout (default 15 s). */
  attemptTimeoutMs?: number;
  /** Retry authentication failures too (a fresh VM may run sshd before its key is written). */
  retryAuth?: boolean;
  /** Called before each retry with the attempt number and the failure. */
  onRetry?: (attempt: number, error: GaxxError) => void;
  signal?: AbortSignal;
}

/** Key exchange and host key preferences; ssh2 >= 1.15 adds strict key exchange on its own. */
export const SSH_ALGORITHMS = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256', 'ecdh-sha2-nistp384', 'diffie-hellman-group14-sha256'],
  serverHostKey: ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256'],
} as ssh2.Algorithms;

/** A verifier for ssh2 that records why it refused, so the caller can report HOST_KEY_MISMATCH. */
function makeVerifier(target: SshTarget, policy: HostKeyPolicy): { verify: (key: Buffer) => boolean; refusal: () => GaxxError | undefined } {
  let refusal: GaxxError | undefined;
  const verify = (blob: Buffer): boolean => {
    try {
      if (policy.kind === 'pinned') {
        const want = policy.publicKey.trim().split(/\s+/);
        const got = describeKeyBlob(blob);
        if (want[0] === got.keyType && want[1] === got.key) return true;
        throw new GaxxError(
          'HOST_KEY_MISMATCH',
          `${target.host}:${target.port} presented host key ${fingerprintOf(blob)}, not the pinned ${want[0] ?? '?'} key: refusing to connect`,
        );
      }
      policy.knownHosts.verify(target.host, target.port, blob, { acceptNew: policy.acceptNew, ...(policy.fleet ? { fleet: policy.fleet } : {}) });
      return true;
    } catch (e) {
      refusal = isGaxxError(e) ? e : new GaxxError('HOST_KEY_MISMATCH', `host key check of ${target.host} failed`, { cause: e });
      return false;
    }
  };
  return { verify, refusal: () => refusal };
}

function classify(e: unknown, target: SshTarget): GaxxError {
  if (isGaxxError(e)) return e;
  const err = e as Error & { level?: string; code?: string };
  const where = `${target.user}@${target.host}:${target.port}`;
  if (err.level === 'client-authentication') return new GaxxError('UNAUTHENTICATED', `${where} refused the SSH key`, { cause: e });
  if (err.level === 'client-timeout') return new GaxxError('DEADLINE_EXCEEDED', `${where}: SSH handshake timed out`, { cause: e });
  return new GaxxError('UNAVAILABLE', `${where}: ${err.code ?? err.message}`, { cause: e });
}

/** One attempt: resolves to a ready client or rejects with a classified GaxxError. */
function attempt(target: SshTarget, policy: HostKeyPolicy, timeoutMs: number, signal: AbortSignal | undefined): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  const verifier = makeVerifier(target, policy);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      untie();
      client.end();
      reject(verifier.refusal() ?? classify(e, target));
    };
    // Ctrl-C ends a handshake under way (it may take up to the attempt's timeout).
    const untie = onAbort(signal, () => fail(new GaxxError('CANCELLED', `connecting to ${target.host} cancelled`)));
    client.once('ready', () => {
      settled = true;
      untie();
      resolve(client);
    });
    client.on('error', fail);
    client.once('close', () => fail(new Error('connection closed before the handshake finished')));
    client.connect({
      host: target.host,
      port: target.port,
      username: target.user,
      privateKey: target.privateKey,
      hostVerifier: verifier.verify,
      algorithms: SSH_ALGORITHMS,
      readyTimeout: timeoutMs,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
    });
    // ssh2 made its socket synchronously above; Node applies this once it connects.
    client.setNoDelay(true);
  });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => (untie(), resolve()), ms);
    const untie = onAbort(signal, () => (clearTimeout(t), resolve()));
  });
}

/**
 * Connects and authenticates, verifying the host key by `policy`. Network failures (and, with
 * retryAuth, refused keys) are retried with backoff (0.25 s doubling to 5 s, jittered) until the
 * deadline; a host key refusal is thrown at once (HOST_KEY_MISMATCH / HOST_KEY_UNKNOWN).
 */
export async function connectSsh(target: SshTarget, policy: HostKeyPolicy, opts: ConnectOptions = {}): Promise<ssh2.Client> {
  const deadline = Date.now() + (opts.deadlineMs ?? 120_000);
  let delay = 250;
  for (let n = 1; ; n++) {
    const left = deadline - Date.now();
    try {
      if (opts.signal?.aborted) throw new GaxxError('CANCELLED', `connecting to ${target.host} cancelled`);
      return await attempt(target, policy, Math.max(1000, Math.min(opts.attemptTimeoutMs ?? 15_000, left)), opts.signal);
    } catch (e) {
      const err = e as GaxxError;
      const final =
        err.code === 'CANCELLED' || err.code === 'HOST_KEY_MISMATCH' || err.code === 'HOST_KEY_UNKNOWN' || (err.code === 'UNAUTHENTICATED' && !opts.retryAuth);
      if (final) throw err;
      if (opts.signal?.aborted) throw new GaxxError('CANCELLED', `connecting to ${target.host} cancelled`, { cause: err });
      if (Date.now() + delay >= deadline) {
        throw new GaxxError(
          'DEADLINE_EXCEEDED',
          `${target.host}:${target.port} did not accept SSH within the deadline (${counted(n, 'attempt')}): ${err.message}`,
          {
            cause: err,
          },
        );
      }
      opts.onRetry?.(n, err);
      await sleep(delay * (0.75 + Math.random() / 2), opts.signal);
      delay = Math.min(delay * 2, 5_000);
    }
  }
}
