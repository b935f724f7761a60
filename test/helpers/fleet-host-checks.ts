/**
 * What every bootstrapped fleet host must show, whatever provider brought it (cloud fakes or an
 * SSH inventory), asserted from inside the test host and over real SSH: the agent runs as gx
 * with its key readable by gx alone,
 * gx cannot sudo, sshd refuses passwords and root, the firewall is loaded with a default drop
 * and no rule for :6060, and nothing listens on :6060. Shared by the fleet and bootstrap tests.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import { expect } from 'vitest';
import { connectSsh } from '../../cli/ssh/index.js';
import { isGaxxError } from '../../proto/index.js';
import type { TestHost } from './test-host.js';

/** The users running the agent on a host (the supervisor's `sh` excluded). */
export async function agentUsers(host: TestHost): Promise<string> {
  const ps = await host.sh("ps -eo user:16,args | grep '[g]axx-agent.mjs' | grep -v 'sh /opt' | awk '{print $1}' | sort -u");
  return ps.stdout.trim();
}

/** The authentication methods the host's sshd still offers `user` after a refused password. */
export async function methodsOffered(host: TestHost, user: string, readyTimeoutMs = 30_000): Promise<string[]> {
  const client = new ssh2.Client();
  let offered: string[] = [];
  await new Promise<void>((resolve) => {
    client.on('error', () => resolve());
    client.on('ready', () => resolve());
    client.connect({
      host: host.address,
      port: 22,
      username: user,
      hostVerifier: (blob: Buffer) => blob.toString('base64') === host.hostPublicKey.split(' ')[1],
      authHandler: (methodsLeft: string[] | null, _partial: boolean, next: (m: unknown) => void) => {
        if (methodsLeft) offered = methodsLeft;
        if (methodsLeft === null) return next({ type: 'password', username: user, password: 'hunter2hunter2' });
        next(false);
      },
      readyTimeout: readyTimeoutMs,
    } as ssh2.ConnectConfig);
  });
  client.end();
  return offered;
}

/** The error code of a root login with `rootKeyPath` (a key root had before bootstrap), or 'connected'. */
export async function rootLogin(host: TestHost, rootKeyPath: string): Promise<string> {
  return connectSsh(
    { host: host.address, port: 22, user: 'root', privateKey: readFileSync(rootKeyPath) },
    { kind: 'pinned', publicKey: host.hostPublicKey },
    { deadlineMs: 20_000 },
  ).then(
    (c) => (c.end(), 'connected'),
    (e: unknown) => (isGaxxError(e) ? e.code : 'other'),
  );
}

/**
 * Asserts the hardening bootstrap promises on `host`. `rootKeyPath` is a key authorized for root
 * before bootstrap: the refusal is then about sshd's policy, not about a missing key.
 */
export async function expectHardened(host: TestHost, rootKeyPath: string): Promise<void> {
  expect(await agentUsers(host)).toBe('gx');
  // The agent's key was made on the host, for gx alone, as EC P-256.
  expect((await host.sh('stat -c "%U %a" /var/lib/gaxx/certs/key.pem')).stdout.trim()).toBe('gx 600');
  const key = createPrivateKey((await host.sh('cat /var/lib/gaxx/certs/key.pem')).stdout);
  expect([key.asymmetricKeyType, key.asymmetricKeyDetails?.namedCurve]).toEqual(['ec', 'prime256v1']);
  expect((await host.exec(['sudo', '-n', 'true'], { user: 'gx' })).code).not.toBe(0);
  expect((await host.sh('sudo -l -U gx')).stdout).toContain('not allowed');
  expect((await host.sh('passwd -S gx')).stdout.split(' ')[1]).toBe('L');
  // sudo works on the host: the refusal above is about gx.
  expect((await host.exec(['sudo', '-n', 'true'])).code).toBe(0);
  expect(await methodsOffered(host, 'gx')).toEqual(['publickey']);
  expect(await rootLogin(host, rootKeyPath)).toBe('UNAUTHENTICATED');
  await expectFirewalled(host);
}

/** The firewall loaded: deny by default, 22/8088/9091 only from the controller, nothing of :6060; the agent listens on :8088 only. */
export async function expectFirewalled(host: TestHost): Promise<void> {
  const rules = (await host.sh('nft list table inet gaxx')).stdout;
  expect(rules).toContain('policy drop');
  expect(rules).toMatch(new RegExp(`ip saddr ${host.controllerAddress.replace(/\./g, '\\.')} tcp dport \\{ 22, 8088, 9091 \\} accept`));
  expect(rules).not.toContain('6060');
  const listening = (await host.sh('ss -ltnH')).stdout;
  expect(listening).toMatch(/:8088\b/);
  expect(listening).not.toMatch(/:6060\b/);
}
