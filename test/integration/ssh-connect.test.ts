/**
 * cli/ssh against a real sshd test host: the handshake is retried until sshd comes up, host keys
 * are checked on every connection (pinned, known_hosts, trust on first use only when asked), and
 * uploads are verified on the host.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generateEd25519,
  KnownHosts,
  connectSsh,
  ensureSshKeyPair,
  execRemote,
  parseKnownHosts,
  uploadVerified,
  type SshKeyPair,
  type SshTarget,
} from '../../cli/ssh/index.js';
import { isGaxxError } from '../../proto/index.js';
import { startTestHost, stopAllTestHosts, type TestHost } from '../helpers/test-host.js';

let dir: string;
let key: SshKeyPair;
let host: TestHost;
let target: SshTarget;

const codeOf = (p: Promise<ssh2.Client>) =>
  p.then(
    (c) => (c.end(), 'connected'),
    (e: unknown) => (isGaxxError(e) ? e.code : `not a GaxxError: ${String(e)}`),
  );

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gx-sshc-'));
  key = ensureSshKeyPair(join(dir, 'id'), join(dir, 'id.pub'), 't');
  host = await startTestHost({ authorizedKeys: [key.publicKey] });
  target = { host: host.address, port: 22, user: 'root', privateKey: readFileSync(key.privateKeyPath) };
});

afterAll(async () => {
  await stopAllTestHosts();
  rmSync(dir, { recursive: true, force: true });
});

describe('connectSsh', () => {
  it('retries the handshake until sshd answers', async () => {
    expect((await host.sh('kill "$(cat /run/sshd.pid)"; while [ -e /run/sshd.pid ]; do sleep 0.05; done; echo down')).stdout.trim()).toBe('down');
    let retries = 0;
    let restarted: Promise<unknown> | undefined;
    const client = await connectSsh(
      target,
      { kind: 'pinned', publicKey: host.hostPublicKey },
      {
        deadlineMs: 60_000,
        onRetry: (_n, err) => {
          retries++;
          expect(err.code).toBe('UNAVAILABLE');
          restarted ??= host.sh('/usr/sbin/sshd');
        },
      },
    );
    await restarted;
    expect(retries).toBeGreaterThan(0);
    expect((await execRemote(client, 'echo up')).stdout).toBe('up\n');
    client.end();
  });

  it('refuses a host key other than the pinned one at once, and connects with the right one', async () => {
    const other = generateEd25519().publicKey.trim();
    let retried = false;
    const refused = await codeOf(connectSsh(target, { kind: 'pinned', publicKey: other }, { deadlineMs: 30_000, onRetry: () => (retried = true) }));
    expect(refused).toBe('HOST_KEY_MISMATCH');
    expect(retried).toBe(false);
    expect(await codeOf(connectSsh(target, { kind: 'pinned', publicKey: host.hostPublicKey }))).toBe('connected');
  });

  it('trusts an unknown host only with accept-new, records it for the fleet, and removes it with the fleet', async () => {
    const kh = new KnownHosts(join(dir, 'known_hosts'));
    expect(await codeOf(connectSsh(target, { kind: 'known-hosts', knownHosts: kh, acceptNew: false }))).toBe('HOST_KEY_UNKNOWN');
    expect(kh.entries()).toHaveLength(0);
    expect(await codeOf(connectSsh(target, { kind: 'known-hosts', knownHosts: kh, acceptNew: true, fleet: 'f1' }))).toBe('connected');
    const [entry] = parseKnownHosts(readFileSync(join(dir, 'known_hosts'), 'utf8'));
    expect(`${entry?.keyType} ${entry?.key}`).toBe(host.hostPublicKey);
    expect(await codeOf(connectSsh(target, { kind: 'known-hosts', knownHosts: kh, acceptNew: false }))).toBe('connected');
    expect(kh.removeFleet('f1')).toBe(1);
    expect(await codeOf(connectSsh(target, { kind: 'known-hosts', knownHosts: kh, acceptNew: false }))).toBe('HOST_KEY_UNKNOWN');
  });

  it('reports a refused user key as UNAUTHENTICATED without retrying', async () => {
    const stranger = generateEd25519().privateKey;
    expect(await codeOf(connectSsh({ ...target, privateKey: stranger }, { kind: 'pinned', publicKey: host.hostPublicKey }))).toBe('UNAUTHENTICATED');
  });

  it('gives up at the deadline when nothing answers', async () => {
    // .254 of the host's network is never handed out: nothing answers there.
    const dead = host.address.replace(/\.\d+$/, '.254');
    expect(
      await codeOf(connectSsh({ ...target, host: dead }, { kind: 'pinned', publicKey: host.hostPublicKey }, { deadlineMs: 2_000, attemptTimeoutMs: 1_000 })),
    ).toBe('DEADLINE_EXCEEDED');
  });
});

describe('uploadVerified', () => {
  it('uploads files and checks their sha256 on the host', async () => {
    const client = await connectSsh(target, { kind: 'pinned', publicKey: host.hostPublicKey });
    const data = Buffer.from('x'.repeat(300_000));
    await uploadVerified(client, [
      { path: '/tmp/up/a/one.bin', data },
      { path: '/tmp/up/b/two name.txt', data: Buffer.from('two\n') },
    ]);
    expect((await execRemote(client, "wc -c < /tmp/up/a/one.bin; cat '/tmp/up/b/two name.txt'")).stdout).toBe('300000\ntwo\n');
    client.end();
  });
});
