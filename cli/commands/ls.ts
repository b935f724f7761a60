/** `gaxx ls [F] [--json]`: fleets and their hosts from the fleet state (no provider call). */
import { GaxxError } from '../../proto/index.js';
import { JSON_FLAG, type Command } from '../command.js';
import type { GaxxConfig } from '../config.js';
import { deadInstanceState } from '../fleet/instance-state.js';
import { renderTable } from '../output.js';
import { reportsLocally } from '../providers/index.js';
import { assertFleetName, fleetPricePerHour, listFleets, readFleet, type FleetState, type HostRecord } from '../state.js';

/** "3d4h", "5m", "12s": the age of something created at `iso`. */
export function age(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

/** "1h59m", "4m", "12s": a span of `ms` (0 and below: "0s"). */
export function span(ms: number): string {
  return age(new Date(0).toISOString(), Math.max(0, ms));
}

/**
 * TTL left, cost so far and budget of a fleet with limits, as the scheduler daemon reckons them
 * (scheduler/queue/fleet-limits.ts: the hourly price of the hosts that may exist, times the hours
 * since the spawn).
 */
export function limitsView(f: FleetState, now = Date.now()) {
  const l = f.limits;
  if (!l) return undefined;
  const costSoFar = (fleetPricePerHour(f) * Math.max(0, now - l.since)) / 3_600_000;
  return {
    ...(l.expiresAt !== undefined
      ? { expiresAt: new Date(l.expiresAt).toISOString(), ttlLeftSeconds: Math.max(0, Math.floor((l.expiresAt - now) / 1000)) }
      : {}),
    ...(l.budget !== undefined ? { budget: l.budget } : {}),
    costSoFar: Math.round(costSoFar * 1_000_000) / 1_000_000,
    currency: l.currency,
  };
}

function limitsText(v: NonNullable<ReturnType<typeof limitsView>>): string {
  const ttl =
    v.ttlLeftSeconds === undefined
      ? ''
      : v.ttlLeftSeconds > 0
        ? `, TTL ${span(v.ttlLeftSeconds * 1000)} left`
        : ', TTL passed (deleted by the scheduler daemon)';
  const budget = v.budget === undefined ? '' : ` of ${v.budget.toFixed(2)} budget`;
  return `${ttl}, cost so far ${v.costSoFar.toFixed(4)} ${v.currency}${budget}`;
}

interface Row {
  fleet: FleetState;
  host: HostRecord;
}

/**
 * What became of each host recorded ready (by name), for fleets whose provider answers from
 * this machine alone (a local agent's pid): 'stopped' or 'gone' as `spawn --fill` sees it. Other
 * providers would need the network (and a token), which ls does not use: their hosts show as recorded.
 */
async function deadHosts(config: GaxxConfig, f: FleetState): Promise<Map<string, string>> {
  const dead = new Map<string, string>();
  const ready = f.hosts.filter((h) => h.status === 'ready' && h.id);
  if (!ready.length || !reportsLocally(f.provider)) return dead;
  const { providerFor } = await import('../fleet/provider-for.js');
  const provider = await providerFor(config, f.provider, { state: f });
  const byId = new Map((await provider.list(f.fleet)).map((i) => [i.id, i]));
  for (const h of ready) {
    const state = deadInstanceState(byId.get(h.id as string) ?? (await provider.get(h.id as string)));
    if (state) dead.set(h.name, state);
  }
  return dead;
}

/** A price per hour as the summary and the table both show it: at most 4 decimals, no trailing zeros ($0, $0.0075). */
export function dollars(n: number): string {
  return `$${Number(n.toFixed(4))}`;
}

export const command: Command = {
  usage: 'gaxx ls [F | --fleet F] [--json]',
  description: [
    'Lists fleets and their hosts as gaxx recorded them: provider, region, address, state (intent:',
    'creation asked, maybe interrupted; created; ready; failed), age and hourly price where the',
    'provider gives one. A fleet spawned with --ttl or --budget also shows the TTL left and the cost',
    'so far (its hourly price times the hours since the spawn) against the budget. With F, only that',
    'fleet. Reads local state only, so it needs no token; for the local provider it also checks that',
    'each agent process is alive (a host recorded ready whose agent died shows as stopped).',
    '`gaxx delete F --dry-run` asks the provider what exists.',
  ].join('\n'),
  flags: { json: JSON_FLAG },
  positionals: { names: ['F'], min: 0, complete: 'fleet' },
  examples: ['gaxx ls', 'gaxx ls web', 'gaxx ls --json'],
  async run({ positionals, config, out }) {
    const name = positionals[0];
    let fleets: FleetState[];
    if (name !== undefined) {
      assertFleetName(name);
      const f = readFleet(config.paths.fleetsDir, name);
      if (!f) throw new GaxxError('NOT_FOUND', `no fleet ${name}`);
      fleets = [f];
    } else fleets = listFleets(config.paths.fleetsDir);
    const now = Date.now();
    const dead = new Map<string, Map<string, string>>();
    for (const f of fleets) dead.set(f.fleet, await deadHosts(config, f));
    // A host recorded ready whose instance is not running shows as its provider reports it.
    const stateOf = (f: FleetState, h: HostRecord): string => dead.get(f.fleet)?.get(h.name) ?? h.status;
    const json = fleets.map((f) => ({
      fleet: f.fleet,
      provider: f.provider,
      count: f.count,
      minCount: f.minCount,
      ready: f.hosts.filter((h) => stateOf(f, h) === 'ready').length,
      pricePerHour: f.hosts.reduce((sum, h) => sum + (h.pricePerHour ?? 0), 0),
      createdAt: f.createdAt,
      ...(f.limits ? { limits: limitsView(f, now) } : {}),
      hosts: f.hosts.map((h) => ({
        name: h.name,
        id: h.id,
        region: h.region,
        address: h.ipv4,
        agent: h.agent,
        ...(h.metrics ? { metrics: h.metrics } : {}),
        state: stateOf(f, h),
        ...(stateOf(f, h) !== h.status ? { recordedState: h.status } : {}),
        createdAt: h.createdAt,
        ageSeconds: Math.floor((now - Date.parse(h.createdAt)) / 1000),
        pricePerHour: h.pricePerHour,
        error: h.error,
      })),
    }));
    out.result(json, () => {
      if (fleets.length === 0) return 'no fleets (create one with gaxx spawn)';
      const rows: Row[] = fleets.flatMap((fleet) => fleet.hosts.map((host) => ({ fleet, host })));
      const summary = fleets.map((f, i) => {
        const l = limitsView(f, now);
        const down = dead.get(f.fleet)?.size ?? 0;
        const fill = down ? `; ${down} not running (gaxx spawn --fleet ${f.fleet} --fill replaces ${down === 1 ? 'it' : 'them'})` : '';
        return `${f.fleet}: ${f.provider}, ${json[i]?.ready}/${f.count} ready${fill}, ${dollars(json[i]?.pricePerHour ?? 0)}/h${l ? limitsText(l) : ''}`;
      });
      const table = renderTable(rows, [
        { header: 'FLEET', get: (r) => r.fleet.fleet },
        { header: 'HOST', get: (r) => r.host.name },
        { header: 'PROVIDER', get: (r) => r.fleet.provider },
        { header: 'REGION', get: (r) => r.host.region ?? '-' },
        { header: 'ADDRESS', get: (r) => r.host.ipv4 ?? '-' },
        { header: 'STATE', get: (r) => stateOf(r.fleet, r.host) },
        { header: 'AGE', get: (r) => age(r.host.createdAt, now) },
        { header: 'PRICE/H', get: (r) => (r.host.pricePerHour === undefined ? '-' : dollars(r.host.pricePerHour)) },
      ]);
      return [...summary, ...(rows.length ? ['', table] : [])].join('\n');
    });
    return 0;
  },
};
