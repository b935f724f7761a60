/**
 * One listener per signal for any number of short waits on it. A command's one signal (its
 * Ctrl-C) outlives hundreds of provider requests, pacer waits, backoff sleeps and SSH attempts;
 * a listener each would pile up on it (Node warns past 10) and, for `{ once: true }` listeners
 * of waits that ended without an abort, stay until the command ends.
 */

const subscribers = new WeakMap<AbortSignal, Set<(reason: unknown) => void>>();

function fire(this: AbortSignal): void {
  const subs = subscribers.get(this);
  subscribers.delete(this);
  for (const fn of subs ?? []) fn(this.reason);
}

/**
 * Calls `fn` with the signal's reason when `signal` aborts (at once when it already has);
 * returns the unsubscribe, which every caller calls when its wait ends.
 */
export function onAbort(signal: AbortSignal | undefined, fn: (reason: unknown) => void): () => void {
  if (!signal) return () => undefined;
  if (signal.aborted) {
    fn(signal.reason);
    return () => undefined;
  }
  let subs = subscribers.get(signal);
  if (!subs) {
    subs = new Set();
    subscribers.set(signal, subs);
    signal.addEventListener('abort', fire, { once: true });
  }
  const entry = (reason: unknown): void => fn(reason);
  subs.add(entry);
  return () => {
    const now = subscribers.get(signal);
    if (!now?.delete(entry) || now.size > 0) return;
    subscribers.delete(signal);
    signal.removeEventListener('abort', fire);
  };
}
