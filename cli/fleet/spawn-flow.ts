/**
 * The steps of `gaxx spawn` after its flags are checked: adopt tagged instances the state lost,
 * create the missing hosts (intent recorded first), wait for their addresses, bootstrap them,
 * and clean up every host that did not become ready. When fewer than --min-count hosts are
 * ready, nothing this run created is left behind.
 */
import { GaxxError, isGaxxError, type ErrorCode } from '../../proto/index.js';
import type { Clock, Instance, Provider } from '../providers/index.js';
import { hostName, type FleetStore, type HostRecord } from '../state.js';
import type { BootstrapStep, BootstrapTarget } from './bootstrap-step.js';
import { deadInstanceState } from './instance-state.js';
import { waitForAddress } from './wait-ready.js';

export interface SpawnContext {
  provider: Provider;
  store: FleetStore;
  step: BootstrapStep;
  clock: Clock;
  signal: AbortSignal;
  readyTimeoutMs: number;
  /** The agent port (hosts whose provider starts the agent are dialled there). */
  agentPort: number;
  /** One progress line per event (stderr). */
  progress: (line: string) => void;
  /**
   * When the fleet was created (fleetSinceOf of its state: the first spawn's, kept by --fill):
   * its agents refuse work signed before it, an earlier fleet's of the same name.
   */
  fleetSince: number;
}

/** What a run did per host. */
export interface SpawnReport {
  ready: HostRecord[];
  failed: { name: string; code: ErrorCode; error: string }[];
  /** Instances destroyed while cleaning up. */
  destroyed: string[];
}

/** The fleet's tagged instances, and those among them that duplicate a host the state has. */
export interface TaggedInstances {
  tagged: Instance[];
  /** Instances named like a host that already has its own (or failed): not the fleet's, destroyed by destroySurplus. */
  surplus: Instance[];
}

/**
 * Adopts instances carrying the fleet tag whose label names a host the state lost or holds as
 * intent (an interrupted spawn). A host the state holds as created or ready keeps its own
 * instance: another one with its label is surplus, never taken for it (a ready host is never
 * demoted and bootstrapped again: its root login is off), and so is one named like a failed host.
 */
export async function adoptTagged(ctx: SpawnContext): Promise<TaggedInstances> {
  const { store } = ctx;
  const tagged = await ctx.provider.list(store.state.fleet, { signal: ctx.signal });
  const pattern = new RegExp(`^${hostName(store.state.fleet, 0).slice(0, -1)}(\\d+)$`);
  const indexOf = (inst: Instance): number | undefined => {
    const m = pattern.exec(inst.label);
    return m ? Number(m[1]) : undefined;
  };
  // A host whose own instance is listed has it.
  const claimed = new Set(store.state.hosts.filter((h) => h.status !== 'failed' && h.id && tagged.some((i) => i.id === h.id)).map((h) => h.index));
  const surplus: Instance[] = [];
  for (const inst of tagged) {
    const index = indexOf(inst);
    if (index === undefined) continue;
    const known = store.state.hosts.find((h) => h.index === index);
    if (known && known.id === inst.id && known.status !== 'failed') continue;
    if (claimed.has(index) || (known && known.status !== 'intent')) {
      surplus.push(inst);
      continue;
    }
    claimed.add(index);
    await store.setHost(index, { status: 'created', id: inst.id, ipv4: inst.ipv4, region: inst.region, type: inst.type, metrics: inst.metrics });
  }
  return { tagged, surplus };
}

/** Destroys surplus instances (the provider re-checks their tag); resolves with the ids destroyed. */
export async function destroySurplus(ctx: SpawnContext, surplus: Instance[]): Promise<string[]> {
  const destroyed: string[] = [];
  await Promise.all(
    surplus.map(async (inst) => {
      try {
        if ((await ctx.provider.destroy(ctx.store.state.fleet, inst.id, { signal: ctx.signal })) === 'deleted') destroyed.push(inst.id);
        ctx.progress(`${inst.label}: instance ${inst.id} duplicates the host of that name; destroyed it`);
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        ctx.progress(`${inst.label}: instance ${inst.id} duplicates the host of that name; destroying it failed: ${toGaxx(e).message}`);
      }
    }),
  );
  return destroyed;
}

/**
 * A --fill's look at the hosts the state holds as ready: one whose instance the provider no
 * longer lists, or lists as stopped or being deleted (a local agent that died, a VM powered off
 * or removed by hand), is not: what is left of it is destroyed and it is marked failed, so that
 * the fill creates it again rather than report it ready. (A host still being created, from an
 * interrupted spawn, goes through the spawn's own steps: a new VM may be listed as stopped a while.) `tagged`: the provider's list of the
 * fleet (adoptTagged's); a host missing from it is asked for by id before it counts as gone (a
 * list that missed a running VM must not get it destroyed). Resolves with the instances destroyed.
 */
export async function retireDeadHosts(ctx: SpawnContext, tagged: Instance[]): Promise<string[]> {
  const byId = new Map(tagged.map((i) => [i.id, i]));
  const dead = new Map<number, GaxxError>();
  for (const h of ctx.store.state.hosts) {
    if (h.status !== 'ready' || !h.id) continue;
    const inst = byId.get(h.id) ?? (await ctx.provider.get(h.id, { signal: ctx.signal }));
    const state = deadInstanceState(inst);
    if (state === undefined) continue;
    const why = `its instance ${h.id} is ${state}`;
    dead.set(h.index, new GaxxError('UNAVAILABLE', why));
    ctx.progress(`${h.name}: ${why}; replacing it`);
  }
  return dead.size > 0 ? (await destroyHosts(ctx, new Set(dead.keys()), dead, false)).destroyed : [];
}

/** Indices 0..count-1 without a live host. */
export function missingIndices(hosts: HostRecord[], count: number): number[] {
  const live = new Set(hosts.filter((h) => h.status === 'created' || h.status === 'ready').map((h) => h.index));
  return Array.from({ length: count }, (_, i) => i).filter((i) => !live.has(i));
}

async function createOne(
  ctx: SpawnContext,
  index: number,
  opts: { region?: string | undefined; type?: string | undefined; image?: string | undefined },
): Promise<void> {
  const { store } = ctx;
  const fleet = store.state.fleet;
  const name = hostName(fleet, index);
  // The pinned host key's public half is recorded with the intent, before the provider sees the private half.
  const data = ctx.provider.capabilities.userData ? await ctx.step.userData({ fleet, name }) : undefined;
  await store.setHost(index, { status: 'intent', id: undefined, error: undefined, hostKey: data?.hostPublicKey, agent: undefined, metrics: undefined });
  try {
    const inst = await ctx.provider.create(
      { fleet, label: name, index, userData: data?.userData, fleetSince: ctx.fleetSince, ...opts },
      { signal: ctx.signal },
    );
    const price = inst.type ? await ctx.provider.pricePerHour(inst.type, { signal: ctx.signal }).catch(() => undefined) : undefined;
    const ssh = inst.ssh ? { ssh: { port: inst.ssh.port, user: inst.ssh.user, ...(inst.ssh.keyPath ? { keyPath: inst.ssh.keyPath } : {}) } } : {};
    await store.setHost(index, {
      status: 'created',
      id: inst.id,
      region: inst.region,
      type: inst.type,
      metrics: inst.metrics,
      ...ssh,
      ...(price !== undefined ? { pricePerHour: price } : {}),
    });
    ctx.progress(`${name}: created (${inst.id})`);
  } catch (e) {
    // A refused create made nothing; an uncertain one (network, 5xx) stays as intent for cleanup by tag.
    if (isGaxxError(e) && ['INVALID_ARGUMENT', 'FAILED_PRECONDITION', 'UNAUTHENTICATED', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED'].includes(e.code))
      await store.dropHost(index);
    throw e;
  }
}

/** Creates the hosts at `indices`; resolves with the errors of those that failed, by index. */
export async function createHosts(
  ctx: SpawnContext,
  indices: number[],
  opts: { region?: string | undefined; type?: string | undefined; image?: string | undefined },
): Promise<Map<number, GaxxError>> {
  const failures = new Map<number, GaxxError>();
  await Promise.all(
    indices.map((i) =>
      createOne(ctx, i, opts).catch((e: unknown) => {
        failures.set(i, toGaxx(e));
      }),
    ),
  );
  return failures;
}

/** Waits for each created host's address; failures by index. */
export async function awaitAddresses(ctx: SpawnContext): Promise<Map<number, GaxxError>> {
  const failures = new Map<number, GaxxError>();
  const pending = ctx.store.state.hosts.filter((h) => h.status === 'created' && h.id);
  await Promise.all(
    pending.map(async (h) => {
      try {
        const inst = await waitForAddress(ctx.provider, h.id as string, { timeoutMs: ctx.readyTimeoutMs, clock: ctx.clock, signal: ctx.signal });
        await ctx.store.setHost(h.index, { status: 'created', ipv4: inst.ipv4 });
        ctx.progress(`${h.name}: address ${inst.ipv4 ?? ''}`);
      } catch (e) {
        failures.set(h.index, toGaxx(e));
      }
    }),
  );
  return failures;
}

/** Bootstraps every created host with an address; failures by index. */
export async function bootstrapCreated(ctx: SpawnContext, failed: Map<number, GaxxError>): Promise<void> {
  const hosts = ctx.store.state.hosts.filter((h) => h.status === 'created' && h.ipv4 && h.id && !failed.has(h.index));
  if (hosts.length === 0) return;
  const targets: BootstrapTarget[] = hosts.map((h) => ({
    fleet: ctx.store.state.fleet,
    name: h.name,
    instanceId: h.id as string,
    address: h.ipv4 as string,
    // Over SSH: the host's sshd; otherwise the agent the provider started.
    port: ctx.step.overSsh ? (h.ssh?.port ?? 22) : ctx.agentPort,
    user: h.ssh?.user ?? 'root',
    keyPath: h.ssh?.keyPath,
    hostKey: h.hostKey,
  }));
  let outcomes;
  try {
    outcomes = await ctx.step.run(targets, { signal: ctx.signal, onProgress: (name, step) => ctx.progress(`${name}: ${step}`) });
  } catch (e) {
    for (const h of hosts) failed.set(h.index, toGaxx(e));
    return;
  }
  for (const h of hosts) {
    const o = outcomes.get(h.name);
    if (o?.ok) await ctx.store.setHost(h.index, { status: 'ready', error: undefined, agent: o.agentAddress });
    else failed.set(h.index, o ? o.error : new GaxxError('INTERNAL', `bootstrap reported nothing for ${h.name}`));
  }
}

/** What destroyHosts did: the instances destroyed, and those it could not destroy (kept in the state). */
export interface Cleanup {
  destroyed: string[];
  notDestroyed: { id: string; code: ErrorCode; error: string }[];
}

/**
 * Destroys the hosts at `indices` (by id, and by label among the fleet's tagged instances for
 * those whose create answer was lost) and records them failed (or drops them when `drop`). A
 * host whose instance could not be destroyed keeps its id in the state (failed), for `gaxx
 * delete` to find; a failed listing only loses the label search. Throws only when cancelled.
 */
export async function destroyHosts(ctx: SpawnContext, indices: Set<number>, failed: Map<number, GaxxError>, drop: boolean): Promise<Cleanup> {
  const fleet = ctx.store.state.fleet;
  const names = new Map([...indices].map((i) => [hostName(fleet, i), i]));
  const ids = new Map<string, number>();
  for (const h of ctx.store.state.hosts) if (indices.has(h.index) && h.id) ids.set(h.id, h.index);
  const out: Cleanup = { destroyed: [], notDestroyed: [] };
  try {
    for (const inst of await ctx.provider.list(fleet, { signal: ctx.signal })) {
      const i = names.get(inst.label);
      if (i !== undefined) ids.set(inst.id, i);
    }
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    ctx.progress(`listing the fleet's instances failed (${toGaxx(e).message}): destroying those the state records`);
  }
  const kept = new Map<number, string>();
  await Promise.all(
    [...ids].map(async ([id, i]) => {
      try {
        if ((await ctx.provider.destroy(fleet, id, { signal: ctx.signal })) === 'deleted') out.destroyed.push(id);
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        const err = toGaxx(e);
        out.notDestroyed.push({ id, code: err.code, error: err.message });
        kept.set(i, id);
      }
    }),
  );
  for (const i of indices) {
    const err = failed.get(i);
    const id = kept.get(i);
    if (drop && id === undefined) await ctx.store.dropHost(i);
    else
      await ctx.store.setHost(i, {
        status: 'failed',
        id,
        ipv4: undefined,
        agent: undefined,
        metrics: undefined,
        error: err ? `${err.message} [${err.code}]` : 'not ready',
      });
  }
  return out;
}

/** Any thrown value as a GaxxError (a bare Error stays INTERNAL, which the CLI reports as a bug). */
export function toGaxx(e: unknown): GaxxError {
  return e instanceof GaxxError ? e : new GaxxError('INTERNAL', e instanceof Error ? e.message : String(e), { cause: e });
}
