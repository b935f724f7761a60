/** The dashboard's listening rules: loopback by default; elsewhere only with TLS (refused otherwise). */
import { describe, expect, it } from 'vitest';
import { isGaxxError, isLoopbackAddress, isLoopbackHost } from '../../proto/index.js';
import { listen, splitListen } from '../../scheduler/ui/http.js';

describe('loopback', () => {
  it('counts localhost and literal loopback addresses, never another name that looks like one', () => {
    for (const h of ['localhost', 'LocalHost', '127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of [
      '127.x.example',
      '127.0.0.1.example',
      '127.0.0.1.nip.io',
      'localhost.example',
      'localhost.',
      '10.0.0.1',
      '::ffff:10.0.0.1',
      '::2',
      '0.0.0.0',
    ])
      expect(isLoopbackHost(h), h).toBe(false);
    // An address bound: localhost resolved is one of these, a name never is.
    expect(isLoopbackAddress('127.0.0.1')).toBe(true);
    expect(isLoopbackAddress('localhost')).toBe(false);
  });
});

describe('listen', () => {
  it('refuses a non-loopback address without TLS (CONFIG_INVALID), then listens on loopback', async () => {
    for (const addr of ['0.0.0.0:0', '[::]:0', '10.1.2.3:0']) {
      const err = await listen({ listen: addr }, () => undefined).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isGaxxError(err, 'CONFIG_INVALID'), addr).toBe(true);
    }
    const l = await listen({ listen: '127.0.0.1:0' }, (_req, res) => res.end());
    expect(l.loopback).toBe(true);
    expect(l.port).toBeGreaterThan(0);
    await new Promise((r) => l.server.close(r));
  });

  it('refuses a host name other than localhost, however it looks, saying DNS resolves it; listens on localhost and 127.0.0.2', async () => {
    for (const addr of ['127.x.example:0', '127.0.0.1.example:0', 'localhost.example:0']) {
      const err = await listen({ listen: addr }, () => undefined).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isGaxxError(err, 'CONFIG_INVALID'), addr).toBe(true);
      expect((err as Error).message).toMatch(/is a host name, resolved by DNS/);
    }
    for (const addr of ['localhost:0', '127.0.0.2:0']) {
      const l = await listen({ listen: addr }, (_req, res) => res.end());
      expect(l.loopback, addr).toBe(true);
      expect(isLoopbackAddress((l.server.address() as { address: string }).address), addr).toBe(true);
      await new Promise((r) => l.server.close(r));
    }
  });

  it('refuses addresses that are not host:port', () => {
    for (const bad of ['127.0.0.1', ':9090', '127.0.0.1:99999', 'a:b:c']) {
      let err: unknown;
      try {
        splitListen(bad);
      } catch (e) {
        err = e;
      }
      expect(isGaxxError(err, 'INVALID_ARGUMENT'), bad).toBe(true);
    }
  });
});
