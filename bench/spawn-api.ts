/**
 * Bench: 100 instance creations against the fake Linode API, paced at Linode's documented limit
 * (20 creations per 15 s) with the clock of both sides sped up 10x, as a ratio to the floor that
 * limit imposes: the first 20 go at once, every further 20 wait one window, so 100 instances
 * cannot take less than 4 windows (60 s of API time). A ratio near 1.0 means gaxx loses nothing
 * beyond what the API forces; 429 answers count the times the pacing overshot. Vultr's limit
 * (30 requests/s) gets the same treatment.
 *
 * Usage: npm run bench:spawn-api [-- --count N] [-- --speed X] [-- --json]
 */
import { LinodeProvider, LINODE_CREATE_PACE } from '../cli/providers/linode.js';
import { scaledClock } from '../cli/providers/pacer.js';
import type { Clock, Provider } from '../cli/providers/types.js';
import { VultrProvider, VULTR_PACE } from '../cli/providers/vultr.js';
import type { FakeCloud } from '../test/helpers/fake-cloud.js';
import { FakeLinode } from '../test/helpers/fake-linode.js';
import { FakeVultr } from '../test/helpers/fake-vultr.js';
import { benchArgs } from './lib/args.js';

const TOKEN = 'bench-5f0c2a9e81d74b36a0e94c1d7b2f8e63a5c0d9e8f7b6a5c4';

interface Result {
  provider: string;
  count: number;
  /** API time (the scaled clock) from the first request to the last creation answered, ms. */
  apiMs: number;
  /** Wall time of the same, ms. */
  wallMs: number;
  /** What the documented limit imposes, ms of API time. */
  floorMs: number;
  ratio: number;
  requests: number;
  rateLimited: number;
}

/** Minimum time for `count` starts at `limit` per window: the first burst is free. */
export function floorMs(count: number, pace: { limit: number; windowMs: number }): number {
  return (Math.ceil(count / pace.limit) - 1) * pace.windowMs;
}

async function measure(
  name: string,
  fake: FakeCloud,
  provider: Provider,
  clock: Clock,
  count: number,
  pace: { limit: number; windowMs: number },
): Promise<Result> {
  const t0 = clock.now();
  const w0 = performance.now();
  await Promise.all(Array.from({ length: count }, (_, i) => provider.create({ fleet: 'bench', label: `gaxx-bench-${i}` })));
  const apiMs = clock.now() - t0;
  const wallMs = performance.now() - w0;
  if (fake.tagged('gaxx-fleet:bench').length !== count) throw new Error(`${name}: ${fake.tagged('gaxx-fleet:bench').length} of ${count} instances exist`);
  const floor = floorMs(count, pace);
  return {
    provider: name,
    count,
    apiMs,
    wallMs,
    floorMs: floor,
    ratio: floor > 0 ? apiMs / floor : NaN,
    requests: fake.requests.length,
    rateLimited: fake.requests.filter((r) => r.status === 429).length,
  };
}

async function main(): Promise<void> {
  const values = benchArgs('usage: node dist/bench/spawn-api.js [--count N] [--speed X] [--json]', {
    count: { type: 'string', default: '100' },
    speed: { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
  });
  const count = Number(values.count);
  const speed = Number(values.speed);
  if (!(Number.isInteger(count) && count > 0 && speed > 0)) throw new Error('--count must be a positive integer and --speed positive');
  const results: Result[] = [];
  {
    const clock = scaledClock(speed);
    const fake = await new FakeLinode({ token: TOKEN, clock }).start();
    try {
      results.push(await measure('linode', fake, new LinodeProvider({ baseUrl: fake.url, token: TOKEN, clock }), clock, count, LINODE_CREATE_PACE));
    } finally {
      await fake.stop();
    }
  }
  {
    const clock = scaledClock(speed);
    const fake = await new FakeVultr({ token: TOKEN, clock }).start();
    try {
      results.push(await measure('vultr', fake, new VultrProvider({ baseUrl: fake.url, token: TOKEN, clock }), clock, count, VULTR_PACE));
    } finally {
      await fake.stop();
    }
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ speed, results }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`spawn API pacing: ${count} creations, clock sped up ${speed}x (API time = wall time x ${speed})\n`);
  for (const r of results) {
    process.stdout.write(
      `${r.provider.padEnd(7)} ${(r.apiMs / 1000).toFixed(1)} s API time (${(r.wallMs / 1000).toFixed(2)} s wall), floor ${(r.floorMs / 1000).toFixed(1)} s, ratio ${r.ratio.toFixed(3)}, ${r.requests} requests, ${r.rateLimited} answered 429\n`,
    );
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
