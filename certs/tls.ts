/**
 * The TLS policy every gaxx endpoint shares (gRPC :8088, metrics :9091, clients): TLS >= 1.2,
 * AEAD suites only. Node's defaults also accept CBC suites for TLS 1.2, hence the explicit list.
 */
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';

export const TLS_MIN_VERSION = 'TLSv1.2' as const;

/** TLS 1.3 suites, then TLS 1.2 ECDHE with AES-GCM or ChaCha20-Poly1305. */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Secure-context options for a cert/key/CA triple under the gaxx policy. */
export function secureContextOptions(files: { certPem: Buffer | string; keyPem: Buffer | string; caPem: Buffer | string }): SecureContextOptions {
  return {
    cert: files.certPem,
    key: files.keyPem,
    ca: files.caPem,
    minVersion: TLS_MIN_VERSION,
    ciphers: TLS_CIPHERS,
    honorCipherOrder: true,
  };
}

/**
 * One TLS context per credentials object, shared by every client connection made with it:
 * building one parses the key, certificate and CAs (~2-3 ms), once per connection otherwise
 * (per agent of a fan-out, per agent of every collector round). Each connection still checks
 * its own peer's identity.
 */
const contexts = new WeakMap<object, SecureContext>();
export function sharedSecureContext(files: { certPem: Buffer | string; keyPem: Buffer | string; caPem: Buffer | string }): SecureContext {
  let ctx = contexts.get(files);
  if (!ctx) {
    ctx = createSecureContext(secureContextOptions(files));
    contexts.set(files, ctx);
  }
  return ctx;
}
