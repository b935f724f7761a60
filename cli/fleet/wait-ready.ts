/** Waiting for new instances to be running with an address: polled with backoff until a deadline. */
import { GaxxError } from '../../proto/index.js';
import type { Clock, Instance, Provider } from '../providers/index.js';

/**
 * Polls `provider.get(id)` until the instance runs and has an IPv4 address. DEADLINE_EXCEEDED
 * after `timeoutMs`; NOT_FOUND when the instance vanished.
 */
export async function waitForAddress(provider: Provider, id: string, opts: { timeoutMs: number; clock: Clock; signal: AbortSignal }): Promise<Instance> {
  const end = opts.clock.now() + opts.timeoutMs;
  for (let delay = 1_000; ; delay = Math.min(delay * 2, 10_000)) {
    const inst = await provider.get(id, { signal: opts.signal });
    if (!inst) throw new GaxxError('NOT_FOUND', `instance ${id} disappeared while starting`);
    if (inst.ipv4 && inst.status === 'running') return inst;
    const left = end - opts.clock.now();
    if (left <= 0)
      throw new GaxxError('DEADLINE_EXCEEDED', `instance ${id} has no address after ${Math.round(opts.timeoutMs / 1000)}s (status ${inst.status})`);
    await opts.clock.sleep(Math.min(delay, left), opts.signal);
  }
}
