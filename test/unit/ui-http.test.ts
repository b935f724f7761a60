/** The dashboard's listening rules: loopback by default; elsewhere only with TLS (refused otherwise). */
import { describe, expect, it } from 'vitest';
import { isGaxxError } from '../../proto/index.js';
import { listen, splitListen } from '../../scheduler/ui/http.js';

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
