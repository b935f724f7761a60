/**
 * The `ssh` provider: hosts the user already has, listed in an inventory file
 * (`--inventory FILE`, YAML `hosts: [{host, port, user, key}]`, port 22 and user root by
 * default). Nothing is rented or destroyed: create() hands out the N-th inventory host tagged
 * for the fleet, destroy() forgets it. Bootstrap then treats them like any other instance, with
 * strict known_hosts (trust on first use only with --accept-new).
 */
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { counted, GaxxError } from '../../proto/index.js';
import { fleetTag, hasFleetTag, type CreateRequest, type DestroyOutcome, type Instance, type Provider, type ProviderSettings } from './types.js';

const hostName = z
  .string()
  .min(1)
  .refine(
    (h) => isIP(h) !== 0 || /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(h),
    'must be an IP address or a DNS name',
  );

const InventorySchema = z
  .object({
    hosts: z
      .array(
        z
          .object({
            host: hostName,
            port: z.number().int().min(1).max(65535).default(22),
            user: z
              .string()
              .regex(/^[a-z_][a-z0-9_-]*$/, 'must be a POSIX user name')
              .default('root'),
            key: z.string().min(1).optional(),
          })
          .strict(),
      )
      .min(1, 'lists no hosts'),
  })
  .strict();

/** One inventory host, validated; `key` resolved to an absolute path when given. */
export interface InventoryHost {
  host: string;
  port: number;
  user: string;
  key: string | undefined;
}

/**
 * Parses and validates inventory YAML. CONFIG_INVALID lists every problem with its dot-path
 * (e.g. `hosts.1.port: Expected number, received string`); relative key paths are resolved
 * against the inventory's directory, `~/` against `homeDir`.
 */
export function parseInventory(text: string, source: string, homeDir?: string): InventoryHost[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new GaxxError('CONFIG_INVALID', `${source}: not valid YAML: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  const r = InventorySchema.safeParse(doc);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new GaxxError('CONFIG_INVALID', `${source}: ${issues.join('; ')}`, { details: { issues } });
  }
  const seen = new Set<string>();
  return r.data.hosts.map((h, i) => {
    const id = `${h.host}:${h.port}`;
    if (seen.has(id)) throw new GaxxError('CONFIG_INVALID', `${source}: hosts.${i}: ${id} is listed twice`, { details: { issues: [`hosts.${i}: duplicate`] } });
    seen.add(id);
    return { host: h.host, port: h.port, user: h.user, key: h.key === undefined ? undefined : resolveKey(h.key, source, homeDir, i) };
  });
}

function resolveKey(key: string, source: string, homeDir: string | undefined, i: number): string {
  if (key.startsWith('~/')) {
    if (!homeDir) throw new GaxxError('CONFIG_INVALID', `${source}: hosts.${i}.key: ~ cannot be expanded here; give an absolute path`);
    return join(homeDir, key.slice(2));
  }
  return isAbsolute(key) ? key : resolve(dirname(source), key);
}

/** Reads and validates an inventory file (NOT_FOUND when it cannot be read). */
export function loadInventory(path: string, homeDir?: string): InventoryHost[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new GaxxError('NOT_FOUND', `inventory ${path} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  return parseInventory(text, path, homeDir);
}

async function addressesOf(host: string): Promise<{ ipv4: string | undefined; ipv6: string | undefined }> {
  if (isIP(host) === 4) return { ipv4: host, ipv6: undefined };
  if (isIP(host) === 6) return { ipv4: undefined, ipv6: host };
  const all = await lookup(host, { all: true }).catch((e: Error) => {
    throw new GaxxError('UNAVAILABLE', `inventory host ${host} does not resolve: ${e.message}`, { cause: e });
  });
  return { ipv4: all.find((a) => a.family === 4)?.address, ipv6: all.find((a) => a.family === 6)?.address };
}

/**
 * Builds the ssh provider. settings.options: `inventory` (file path) or `hosts`
 * (InventoryHost[] already loaded), `claimed` (instance ids gaxx's fleet state holds, so list()
 * finds them again in a new process), `homeDir`.
 */
export function createSshProvider(settings: ProviderSettings): Provider {
  const o = settings.options ?? {};
  const hosts = Array.isArray(o.hosts)
    ? (o.hosts as InventoryHost[])
    : typeof o.inventory === 'string'
      ? loadInventory(o.inventory, typeof o.homeDir === 'string' ? o.homeDir : undefined)
      : (() => {
          throw new GaxxError('USAGE', 'the ssh provider needs --inventory FILE');
        })();
  const byId = new Map<string, InventoryHost>(hosts.map((h) => [`${h.host}:${h.port}`, h]));
  // id -> fleet of every host handed out (or known from state).
  const claims = new Map<string, string>(Object.entries((o.claimed as Record<string, string> | undefined) ?? {}));

  const toInstance = async (id: string, h: InventoryHost, label: string, tags: string[]): Promise<Instance> => ({
    id,
    provider: 'ssh',
    label,
    tags,
    status: 'running',
    ...(await addressesOf(h.host)),
    region: undefined,
    type: undefined,
    createdAt: undefined,
    ssh: { port: h.port, user: h.user, keyPath: h.key },
  });

  return {
    name: 'ssh',
    capabilities: { creates: false, destroys: false, userData: false, maxInstances: hosts.length },
    async create(req: CreateRequest): Promise<Instance> {
      const h = hosts[req.index ?? 0];
      if (!h)
        throw new GaxxError('RESOURCE_EXHAUSTED', `the inventory lists ${counted(hosts.length, 'host')}; there is no host number ${(req.index ?? 0) + 1}`);
      const id = `${h.host}:${h.port}`;
      const owner = claims.get(id);
      if (owner !== undefined && owner !== req.fleet) throw new GaxxError('ALREADY_EXISTS', `${id} already belongs to fleet ${owner}`);
      claims.set(id, req.fleet);
      return toInstance(id, h, req.label, [fleetTag(req.fleet), ...(req.tags ?? [])]);
    },
    async list(fleet: string): Promise<Instance[]> {
      const mine = [...claims].filter(([, f]) => f === fleet).map(([id]) => id);
      const out = await Promise.all(mine.flatMap((id) => (byId.has(id) ? [toInstance(id, byId.get(id) as InventoryHost, id, [fleetTag(fleet)])] : [])));
      return out.filter((i) => hasFleetTag(i, fleet));
    },
    async get(id: string): Promise<Instance | undefined> {
      const h = byId.get(id);
      const fleet = claims.get(id);
      return h ? toInstance(id, h, id, fleet ? [fleetTag(fleet)] : []) : undefined;
    },
    async destroy(fleet: string, id: string): Promise<DestroyOutcome> {
      if (!byId.has(id)) return 'gone';
      if (claims.get(id) !== fleet) return 'refused';
      claims.delete(id);
      return 'deleted';
    },
    async pricePerHour(): Promise<number | undefined> {
      return undefined;
    },
  };
}
