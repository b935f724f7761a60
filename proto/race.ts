/**
 * Waiting on a promise until a signal aborts, without Promise.race against a promise that
 * outlives the wait. Promise.race adds a reaction to each promise it is given, and a reaction
 * holds the race's own promise, which holds what the race settled with. Raced in a loop against
 * one promise that settles only on an abort that may never come, every round's reaction stays
 * on it, and with it every round's result: a follower that raced each read of a run's stream
 * against such a promise kept every entry it read, output and all (heap exhausted after ~37,000
 * tasks under an 80 MB limit). Here each wait has listeners and a timer of its own, removed when
 * it settles.
 */

/**
 * `p`'s outcome, or 'stop' once one of `signals` aborts (at once if one has), or, with `ms`,
 * 'tick' after that long; whichever comes first. `p` itself is not cancelled.
 */
export function raceAbort<T>(p: Promise<T>, signals: ReadonlyArray<AbortSignal | undefined>, ms?: number): Promise<T | 'stop' | 'tick'> {
  return new Promise<T | 'stop' | 'tick'>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const settle = (): void => {
      clearTimeout(timer);
      for (const s of signals) s?.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      settle();
      resolve('stop');
    };
    if (signals.some((s) => s?.aborted)) {
      resolve('stop');
      return;
    }
    for (const s of signals) s?.addEventListener('abort', onAbort, { once: true });
    if (ms !== undefined)
      timer = setTimeout(() => {
        settle();
        resolve('tick');
      }, ms);
    p.then(
      (v) => {
        settle();
        resolve(v);
      },
      (e: unknown) => {
        settle();
        reject(e);
      },
    );
  });
}
