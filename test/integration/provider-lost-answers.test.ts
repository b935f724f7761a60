/**
 * The linode and vultr providers when an answer is lost on the way back (a fault proxy between
 * them and their fake API): a creation the provider made is found by its label instead of being
 * asked for again (Vultr would bill a second instance, Linode refuse the label as taken), one
 * the provider never saw is asked for again, and many requests on one command signal leave no
 * listener behind on it.
 */
import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { LinodeProvider } from '../../cli/providers/linode.js';
import { scaledClock } from '../../cli/providers/pacer.js';
import type { Provider } from '../../cli/providers/types.js';
import { VultrProvider } from '../../cli/providers/vultr.js';
import type { FakeCloud } from '../helpers/fake-cloud.js';
import { FakeLinode } from '../helpers/fake-linode.js';
import { FakeVultr } from '../helpers/fake-vultr.js';
import { FaultProxy, type FaultAction, type ProxiedRequest } from '../helpers/fault-proxy.js';

const TOKEN = 'a'.repeat(8) + 'b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8';

const clouds = [
  {
    name: 'linode',
    fake: (clock = scaledClock(100)) => new FakeLinode({ token: TOKEN, clock }),
    provider: (url: string, clock = scaledClock(100)) => new LinodeProvider({ baseUrl: url, token: TOKEN, clock }),
  },
  {
    name: 'vultr',
    fake: (clock = scaledClock(100)) => new FakeVultr({ token: TOKEN, clock }),
    provider: (url: string, clock = scaledClock(100)) => new VultrProvider({ baseUrl: url, token: TOKEN, clock }),
  },
] as const;

const isCreate = (r: ProxiedRequest): boolean => r.method === 'POST' && /\/instances$/.test(r.path);
/** The first creation gets `action`, everything else passes. */
function firstCreate(action: FaultAction): (r: ProxiedRequest) => FaultAction {
  let n = 0;
  return (r) => (isCreate(r) && n++ === 0 ? action : { kind: 'pass' });
}

let stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.reverse()) await s();
  stops = [];
});

describe.each(clouds)('$name provider behind a lossy network', (cloud) => {
  async function world(): Promise<{ fake: FakeCloud; proxy: FaultProxy; p: Provider }> {
    const clock = scaledClock(100);
    const fake = await cloud.fake(clock).start();
    stops.push(() => fake.stop());
    const proxy = await new FaultProxy(() => fake.url).start();
    stops.push(() => proxy.stop());
    return { fake, proxy, p: cloud.provider(proxy.url, clock) };
  }

  it.each([
    { fault: 'a 500', action: { kind: 'lose', status: 500 } as FaultAction },
    { fault: 'a reset', action: { kind: 'reset' } as FaultAction },
  ])('a creation whose answer was lost to $fault after the provider made it is found by label, not made twice', async ({ action }) => {
    const { fake, proxy, p } = await world();
    proxy.rule = firstCreate(action);
    const made = await p.create({ fleet: 'web', label: 'gaxx-web-0' });
    expect(fake.tagged('gaxx-fleet:web').map((i) => [i.id, i.label])).toEqual([[made.id, 'gaxx-web-0']]);
    expect(proxy.actions(isCreate)).toEqual([action.kind === 'lose' ? 'lose500' : 'reset']);
    // Another fleet's instance with the label is not taken for it (Linode refuses a label twice anyway).
    if (cloud.name === 'vultr') fake.seed({ label: 'gaxx-api-0', tags: ['gaxx-fleet:other'] });
    proxy.rule = firstCreate({ kind: 'lose', status: 503 });
    const api = await p.create({ fleet: 'api', label: 'gaxx-api-0' });
    expect(fake.tagged('gaxx-fleet:api').map((i) => i.id)).toEqual([api.id]);
  });

  it('a creation refused before the provider acted (500 or 429 not forwarded) is asked for again, once', async () => {
    const { fake, proxy, p } = await world();
    let n = 0;
    proxy.rule = (r) => (isCreate(r) && n++ < 2 ? { kind: 'answer', status: n === 1 ? 500 : 429 } : { kind: 'pass' });
    const made = await p.create({ fleet: 'web', label: 'gaxx-web-0' });
    expect([...fake.instances.keys()]).toEqual([made.id]);
    expect(proxy.actions(isCreate)).toEqual(['answer500', 'answer429', 'pass']);
    // The lookup came after the 500 only: a 429 is a refusal, nothing to look for.
    expect(proxy.seen.map((r) => (isCreate(r) ? 'POST' : r.method))).toEqual(['POST', 'GET', 'POST', 'POST']);
  });

  it('requests on one command signal leave no abort listener on it when they end', async () => {
    const { fake, p } = await world();
    const ids = Array.from({ length: 40 }, (_, i) => fake.seed({ label: `gaxx-web-${i}`, tags: ['gaxx-fleet:web'] }).id);
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      const command = new AbortController();
      let most = 0;
      const watch = setInterval(() => (most = Math.max(most, getEventListeners(command.signal, 'abort').length)), 1);
      const outcomes = await Promise.all(ids.map((id) => p.destroy('web', id, { signal: command.signal })));
      clearInterval(watch);
      expect(outcomes.every((o) => o === 'deleted')).toBe(true);
      expect(most).toBeLessThanOrEqual(1);
      expect(getEventListeners(command.signal, 'abort')).toEqual([]);
      // Warnings are emitted on the next tick.
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
