/**
 * Ed25519 key pairs in OpenSSH's formats, made with Node's crypto.
 *
 * Not ssh2's generateKeyPairSync: it strips leading zero bytes from the 32-byte public key, so
 * about one key in 256 comes out malformed and is refused when read back (by ssh2 itself and by
 * OpenSSH). Here both halves are encoded from the raw key bytes, at their fixed lengths.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';

/** An Ed25519 key pair: `-----BEGIN OPENSSH PRIVATE KEY-----` text and an `ssh-ed25519 AAAA... [comment]` line. */
export interface Ed25519Pair {
  privateKey: string;
  publicKey: string;
}

const KEY_TYPE = 'ssh-ed25519';

/** SSH wire `string`: uint32 length, then the bytes. */
function sshString(data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** The public key blob (`string "ssh-ed25519"`, `string pub`) of a 32-byte public key. */
export function ed25519PublicBlob(pub: Buffer): Buffer {
  return Buffer.concat([sshString(KEY_TYPE), sshString(pub)]);
}

// RFC 8410: an Ed25519 SubjectPublicKeyInfo is this prefix and the 32-byte public key; a
// PKCS#8 private key (version 0, no attributes) is this prefix and the 32-byte seed.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The 32 bytes after `prefix`, when `der` is exactly that prefix and 32 bytes. */
function fixedDerTail(der: Buffer, prefix: Buffer): Buffer {
  if (der.length !== prefix.length + 32 || !der.subarray(0, prefix.length).equals(prefix)) throw new Error('unexpected Ed25519 key encoding');
  return der.subarray(prefix.length);
}

/** Generates a key pair; `comment` goes into both halves (OpenSSH keeps it in the private key too). */
export function generateEd25519(comment = ''): Ed25519Pair {
  // DER, not JWK: Node 20 can deadlock exporting both halves of a generated pair as JWK (seen
  // here within a few thousand keys: a GC during the export runs the key job's destructor, which
  // waits for the lock the export holds).
  const { publicKey, privateKey } = generateKeyPairSync('ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  });
  const pub = fixedDerTail(publicKey, SPKI_PREFIX);
  const seed = fixedDerTail(privateKey, PKCS8_PREFIX);
  const blob = ed25519PublicBlob(pub);
  const check = randomBytes(4);
  let secret = Buffer.concat([check, check, sshString(KEY_TYPE), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  // Padded with 1, 2, 3, ... to the cipher block size (8 for "none"), as PROTOCOL.key says.
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    uint32(1),
    sshString(blob),
    sshString(secret),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g) ?? [];
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `${KEY_TYPE} ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`,
  };
}
