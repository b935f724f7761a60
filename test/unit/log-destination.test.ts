// The daemon's and the agent's log destination: a descriptor that fails is given up (its lines
// dropped, the failure said once), a full non-blocking one holds a line at most
// CONGESTED_WAIT_MS and then none while it stays full, and short writes are finished.
import { describe, expect, it } from 'vitest';
import { CONGESTED_WAIT_MS, fdLogDestination } from '../../proto/log-destination.js';

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code });
}

describe('fdLogDestination', () => {
  it('writes each line whole, finishing short writes', () => {
    const got: string[] = [];
    const d = fdLogDestination(2, undefined, (_fd, b) => {
      const n = Math.min(3, b.length);
      got.push(b.subarray(0, n).toString());
      return n;
    });
    d.write('{"a":1}\n');
    expect(got.join('')).toBe('{"a":1}\n');
    expect(d.failed).toBeUndefined();
    expect(d.dropped).toBe(0);
  });

  it('gives a failed descriptor up: said once, no later write tried', () => {
    let calls = 0;
    const heard: string[] = [];
    const d = fdLogDestination(
      2,
      (e) => heard.push(e.code as string),
      () => {
        calls += 1;
        throw errno('ENOSPC');
      },
    );
    for (let i = 0; i < 5; i++) d.write('line\n');
    expect(calls).toBe(1);
    expect(heard).toEqual(['ENOSPC']);
    expect(d.failed?.code).toBe('ENOSPC');
    expect(d.dropped).toBe(5);
  });

  it('holds a line for a full non-blocking descriptor a bounded while, then none while it stays full', () => {
    let full = true;
    let tries = 0;
    const written: string[] = [];
    const d = fdLogDestination(2, undefined, (_fd, b) => {
      tries += 1;
      if (full) throw errno('EAGAIN');
      written.push(b.toString());
      return b.length;
    });
    const t0 = Date.now();
    d.write('first\n');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(CONGESTED_WAIT_MS);
    expect(tries).toBeGreaterThan(1);
    expect(d.dropped).toBe(1);
    tries = 0;
    d.write('second\n');
    expect(tries).toBe(1);
    expect(d.dropped).toBe(2);
    // Room again: lines go through, and the next one gets its wait back.
    full = false;
    d.write('third\n');
    expect(written).toEqual(['third\n']);
    expect(d.failed).toBeUndefined();
  });
});
