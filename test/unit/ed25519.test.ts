// Ed25519 key pairs in OpenSSH format: every key reads back (ssh2 and OpenSSH's ssh-keygen),
// including the one in 256 whose public key starts with a zero byte (which ssh2's own generator
// mangles), and the private key signs what the public key verifies.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, describe, expect, it } from 'vitest';
import { generateEd25519 } from '../../cli/ssh/index.js';

const dir = mkdtempSync(join(tmpdir(), 'gaxx-ed25519-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function rawPublic(line: string): Buffer {
  // blob = string "ssh-ed25519" (4 + 11 bytes), string pub (4 + 32 bytes)
  return Buffer.from(line.split(' ')[1] ?? '', 'base64').subarray(19);
}

function checkPair(pair: { privateKey: string; publicKey: string }, comment: string): void {
  const priv = ssh2.utils.parseKey(pair.privateKey);
  const pub = ssh2.utils.parseKey(pair.publicKey);
  if (priv instanceof Error || Array.isArray(priv)) throw priv;
  if (pub instanceof Error || Array.isArray(pub)) throw pub;
  expect(priv.type).toBe('ssh-ed25519');
  expect(priv.getPublicSSH().equals(pub.getPublicSSH())).toBe(true);
  expect(priv.comment).toBe(comment);
  const data = Buffer.from('gaxx');
  expect(pub.verify(data, priv.sign(data))).toBe(true);
  // OpenSSH reads the private key and derives the same public key from it.
  const file = join(dir, 'key');
  writeFileSync(file, pair.privateKey, { mode: 0o600 });
  // -P '': a key it cannot read fails instead of asking for a passphrase on the terminal.
  const derived = execFileSync('ssh-keygen', ['-y', '-P', '', '-f', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 }).trim();
  expect(derived.split(' ').slice(0, 2)).toEqual(pair.publicKey.split(' ').slice(0, 2));
}

describe('generateEd25519', () => {
  it('writes keys that ssh2 and ssh-keygen read back, with the comment in both halves', () => {
    const pair = generateEd25519('gaxx-alice');
    expect(pair.publicKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+={0,2} gaxx-alice$/);
    checkPair(pair, 'gaxx-alice');
    expect(generateEd25519().publicKey.split(' ')).toHaveLength(2);
  });

  it('keeps a public key that starts with a zero byte whole', () => {
    // One key in 256 starts with 0x00; 4096 tries miss it with a probability near 1e-7.
    let found: { privateKey: string; publicKey: string } | undefined;
    for (let i = 0; i < 4096 && !found; i++) {
      const pair = generateEd25519('z');
      if (rawPublic(pair.publicKey)[0] === 0) found = pair;
    }
    expect(found).toBeDefined();
    expect(rawPublic((found as { publicKey: string }).publicKey)).toHaveLength(32);
    checkPair(found as { privateKey: string; publicKey: string }, 'z');
  });
});
