/**
 * The end of `gaxx spawn`: what a finished spawn did with each host (and cleaned up), and what an
 * interrupted one leaves behind and how to go on from there.
 */
import { counted, exitCodeFor, type GaxxError } from '../../proto/index.js';
import type { CommandContext } from '../command.js';
import type { GaxxConfig } from '../config.js';
import type { FleetState } from '../state.js';
import { publishFleetLimits } from './fleet-directory.js';
import { forgetFleet, unregisterHint } from './forget-fleet.js';
import { destroyHosts, type SpawnContext } from './spawn-flow.js';

type Output = CommandContext['out'];

/** What finish needs of the spawn's plan. */
export interface FinishPlan {
  fleet: string;
  provider: string;
  count: number;
  minCount: number;
  existing: FleetState | undefined;
}

/**
 * Ends a spawn: destroys the hosts that did not become ready (every host this run made when
 * fewer than --min-count are ready), registers a usable fleet (`register`), forgets one left
 * without any host, and reports. Resolves with the exit code.
 */
export async function finish(
  ctx: SpawnContext,
  config: GaxxConfig,
  out: Output,
  r: { p: FinishPlan; before: Set<number>; failed: Map<number, GaxxError>; duplicates: string[]; register: (state: FleetState) => Promise<void> },
): Promise<number> {
  const { store } = ctx;
  const ready = store.state.hosts.filter((h) => h.status === 'ready');
  const notReady = new Set(store.state.hosts.filter((h) => h.status !== 'ready').map((h) => h.index));
  for (const i of r.failed.keys()) notReady.add(i);
  const usable = ready.length >= r.p.minCount;
  // Below --min-count: undo this run entirely (hosts that were ready before it stay).
  const undo = usable ? notReady : new Set([...notReady, ...ready.filter((h) => !r.before.has(h.index)).map((h) => h.index)]);
  const { destroyed, notDestroyed } = undo.size > 0 ? await destroyHosts(ctx, undo, r.failed, !usable) : { destroyed: [], notDestroyed: [] };
  const failures = [...r.failed].map(([i, e]) => ({ host: `gaxx-${r.p.fleet}-${i}`, code: e.code, error: e.message }));
  // No host left: forgotten as `gaxx delete` forgets a fleet (certificates, known_hosts, state, Redis).
  const forgot = store.state.hosts.length === 0 ? await forgetFleet(config, r.p.fleet, { registered: !!store.state.limits || !!r.p.existing }) : undefined;
  if (!forgot) {
    if (usable) await r.register(store.state);
    await publishFleetLimits(config, store.state);
  }
  const limits = store.state.limits;
  // Hosts gaxx did not rent (an inventory) are never destroyed: the provider only forgets them.
  const keeps = !ctx.provider.capabilities.destroys;
  const result = {
    fleet: r.p.fleet,
    provider: r.p.provider,
    ready: store.state.hosts.filter((h) => h.status === 'ready').map((h) => ({ name: h.name, address: h.ipv4, agent: h.agent })),
    failed: failures,
    destroyed: keeps ? [] : destroyed,
    ...(keeps ? { released: destroyed } : {}),
    ...(notDestroyed.length ? { notDestroyed } : {}),
    ...(r.duplicates.length ? { duplicatesDestroyed: r.duplicates } : {}),
    ...(forgot?.unregisterError ? { unregisterFailed: { code: forgot.unregisterError.code, error: forgot.unregisterError.message } } : {}),
    ...(limits
      ? { limits: { ...(limits.expiresAt ? { expiresAt: new Date(limits.expiresAt).toISOString() } : {}), budget: limits.budget, currency: limits.currency } }
      : {}),
  };
  out.result(result, () =>
    [
      `fleet ${r.p.fleet}: ${result.ready.length}/${r.p.count} hosts ready${usable ? '' : ` (fewer than --min-count ${r.p.minCount})`}`,
      ...(limits && store.state.hosts.length ? [limitsLine(limits)] : []),
      ...failures.map((f) => `  ${f.host}: ${f.error} [${f.code}]`),
      ...(destroyed.length ? [cleanupLine(destroyed.length, keeps)] : []),
      ...notDestroyed.map((n) => `  ${n.id}: not destroyed: ${n.error} [${n.code}]`),
      ...(notDestroyed.length ? [`${counted(notDestroyed.length, 'instance')} left running: 'gaxx delete ${r.p.fleet}' removes the fleet`] : []),
      ...(r.duplicates.length ? [`destroyed ${counted(r.duplicates.length, 'instance')} named like a host that has its own`] : []),
      ...(forgot?.unregisterError ? [unregisterHint(r.p.fleet, r.p.provider, forgot.unregisterError)] : []),
      ...(usable && failures.length ? [`add the missing hosts later with: gaxx spawn --fleet ${r.p.fleet} --fill`] : []),
    ].join('\n'),
  );
  if (usable) return 0;
  const first = failures[0];
  if (first && !out.json) out.note(`gaxx: spawn of ${r.p.fleet} failed: ${first.error} [${first.code}]`);
  return exitCodeFor(first?.code ?? 'UNAVAILABLE');
}

/** What was done with the hosts that did not become ready. */
function cleanupLine(n: number, keeps: boolean): string {
  if (!keeps) return `destroyed ${counted(n, 'instance')} that did not become ready`;
  return `released ${counted(n, 'inventory host')} that did not become ready: gaxx no longer uses ${n === 1 ? 'it' : 'them'}; the machine${n === 1 ? ' is' : 's are'} left as ${n === 1 ? 'it is' : 'they are'} (inventory hosts are never destroyed)`;
}

/** "deleted at 2026-...Z (TTL) or once it costs 5.00 USD (budget), by the scheduler daemon" */
function limitsLine(l: NonNullable<FleetState['limits']>): string {
  const parts = [
    ...(l.expiresAt ? [`at ${new Date(l.expiresAt).toISOString()} (TTL)`] : []),
    ...(l.budget !== undefined ? [`once it costs ${l.budget.toFixed(2)} ${l.currency} (budget)`] : []),
  ];
  return `  deleted ${parts.join(' or ')} by a running gaxx scheduler`;
}

/**
 * The report of a spawn stopped by Ctrl-C: nothing is cleaned up (that would take as long as the
 * spawn), so every instance the state records is named, with the two ways to go on. Resolves
 * with the exit code (CANCELLED); undefined when the state records none.
 */
export function reportInterrupted(out: Output, p: FinishPlan, state: FleetState): number | undefined {
  const left = state.hosts
    .filter((h) => h.status !== 'failed' || h.id)
    .map((h) => ({ name: h.name, id: h.id, state: h.status, ...(h.ipv4 ? { address: h.ipv4 } : {}) }));
  if (left.length === 0) return undefined;
  const next = { resume: `gaxx spawn --fleet ${p.fleet} --fill`, remove: `gaxx delete ${p.fleet}` };
  out.result({ fleet: p.fleet, provider: p.provider, interrupted: true, left, next }, () =>
    [
      `spawn of fleet ${p.fleet} interrupted: ${counted(left.length, 'host')} left as they are`,
      // An intent's instance may or may not have been made: delete and --fill look for it by tag.
      ...left.map((h) => `  ${h.name} ${h.id ?? '(may exist)'} ${h.state}${h.address ? ` ${h.address}` : ''}`),
      `resume with '${next.resume}', or remove the fleet with '${next.remove}'`,
    ].join('\n'),
  );
  return exitCodeFor('CANCELLED');
}
