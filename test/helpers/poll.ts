/**
 * Waiting for an event in a test: `check` is looked at every `everyMs` until it holds or `ms`
 * passed (a deadline in time, so a loaded machine gets the same time, not fewer looks).
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `check` every `everyMs` (100) until it holds or `ms` passed; whether it held at the end. */
export async function eventually(check: () => boolean | Promise<boolean>, ms: number, everyMs = 100): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(everyMs)) if (await check()) return true;
  return check();
}
