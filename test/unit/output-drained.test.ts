// Output.drained: what a command that streams results awaits between reads, so a slow reader of
// its stdout holds it back instead of having it buffer everything.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Output } from '../../cli/output.js';

/** A stream of high-water mark 4 whose writes complete only when `flush` is called. */
function heldStream(): { stream: Writable; flush: () => void } {
  const held: Array<() => void> = [];
  const stream = new Writable({ highWaterMark: 4, write: (_c, _e, cb) => void held.push(cb) });
  return { stream, flush: () => held.splice(0).forEach((cb) => cb()) };
}

describe('Output.drained', () => {
  it('resolves at once when nothing is backed up, and only once a backed-up stdout drained', async () => {
    const out = heldStream();
    const err = heldStream();
    const o = new Output({ stdout: out.stream, stderr: err.stream, stderrLive: false }, false);
    await o.drained();
    o.writeOut(Buffer.alloc(64, 'x'));
    expect(out.stream.writableNeedDrain).toBe(true);
    let done = false;
    const waiting = o.drained().then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    out.flush();
    await waiting;
    expect(done).toBe(true);
    expect(out.stream.listenerCount('drain')).toBe(0);
  });

  it('waits for both streams, and a stream that closes ends the wait', async () => {
    const out = heldStream();
    const err = heldStream();
    const o = new Output({ stdout: out.stream, stderr: err.stream, stderrLive: false }, false);
    o.writeOut('0123456789');
    o.writeErr('0123456789');
    let done = false;
    const waiting = o.drained().then(() => (done = true));
    out.flush();
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    err.stream.destroy();
    await waiting;
    expect(done).toBe(true);
  });
});
