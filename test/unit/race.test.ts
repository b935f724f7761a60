// raceAbort (proto/race.ts): a promise's outcome, 'stop' on an abort, 'tick' after a time; and,
// unlike Promise.race against a promise that outlives the wait, no round's result kept alive.
import { getEventListeners } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { raceAbort } from '../../proto/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** How many of `refs` still lead to their object after full collections. */
async function alive(refs: Array<WeakRef<object>>): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return refs.filter((r) => r.deref() !== undefined).length;
}

describe('raceAbort', () => {
  it("settles as its promise does, 'stop' on an abort (also one before), 'tick' after ms; leaves no listener", async () => {
    const a = new AbortController();
    expect(await raceAbort(Promise.resolve(7), [a.signal, undefined])).toBe(7);
    await expect(raceAbort(Promise.reject(new Error('no')), [a.signal])).rejects.toThrow('no');
    expect(await raceAbort(new Promise(() => undefined), [a.signal], 5)).toBe('tick');
    const waiting = raceAbort(new Promise(() => undefined), [a.signal]);
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(1);
    a.abort();
    expect(await waiting).toBe('stop');
    expect(await raceAbort(Promise.resolve(7), [a.signal])).toBe('stop');
    const b = new AbortController();
    await raceAbort(Promise.resolve(1), [b.signal], 60_000);
    await raceAbort(new Promise(() => undefined), [b.signal], 1);
    expect(getEventListeners(b.signal, 'abort')).toHaveLength(0);
  });

  it("keeps no round's result alive in a loop whose signal never aborts (Promise.race against one promise keeps them all)", async () => {
    const never = new AbortController();
    const neverSettles = new Promise<'stop'>(() => undefined);
    const rounds = 200;
    const raced: Array<WeakRef<object>> = [];
    const waited: Array<WeakRef<object>> = [];
    for (let i = 0; i < rounds; i++) {
      const a = { output: Buffer.alloc(64 * 1024) };
      raced.push(new WeakRef(a));
      await Promise.race([Promise.resolve(a), neverSettles]);
      const b = { output: Buffer.alloc(64 * 1024) };
      waited.push(new WeakRef(b));
      await raceAbort(Promise.resolve(b), [never.signal], 60_000);
    }
    // At most the last round's, which the loop's own frame may still hold.
    expect(await alive(waited)).toBeLessThanOrEqual(1);
    // The pattern it replaces: every round's result is held by its reaction on neverSettles.
    expect(await alive(raced)).toBe(rounds);
    expect(neverSettles).toBeInstanceOf(Promise);
  });
});
