/**
 * The `ssh` provider: hosts the user already has, listed in an inventory file
 * (`--inventory FILE`, YAML `hosts: [{host, port, user, key}]`, port 22 and user root by
 * default). Nothing is rented or destroyed: create() hands out the N-th inventory host tagged
 * for the fleet, destroy() forgets it. Bootstrap then treats them like any other instance, with
 * strict known_hosts (trust on first use only with --accept-new).
 */
import { lookup } from 'node:dns/promises';
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import ssh2 from 'ssh2';
import { parse } from 'yaml';
import { z } from 'zod';
import { counted, fileAccessError, GaxxError, type ErrorCode } from '../../proto/index.js';
import {
  fleetTag,
  hasFleetTag,
  type CreateRequest,
  type DestroyOutcome,
  type Instance,
  type InventoryClaims,
  type Provider,
  type ProviderSettings,
} from './types.js';

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

/** What is wrong with an entry's key file (it must be a private key gaxx can read, readable by its owner only), or undefined. */
function keyProblem(path: string): { code: ErrorCode; problem: string } | undefined {
  let mode: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) return { code: 'CONFIG_INVALID', problem: `${path} is not a file` };
    mode = st.mode & 0o777;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
      return { code: 'CONFIG_INVALID', problem: `${path} does not exist` };
    return { code: 'FILE_ACCESS', problem: fileAccessError(e)?.message ?? `${path}: ${(e as Error).message}` };
  }
  // As ssh itself: a private key others can read is refused, not used.
  if (mode & 0o077)
    return {
      code: 'INSECURE_FILE_MODE',
      problem: `${path} has mode ${mode.toString(8).padStart(4, '0')}; it must not be readable by group or others (chmod 600 ${path})`,
    };
  let key: Buffer;
  try {
    key = readFileSync(path);
  } catch (e) {
    return { code: 'FILE_ACCESS', problem: fileAccessError(e)?.message ?? `${path}: ${(e as Error).message}` };
  }
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error || Array.isArray(parsed)) return { code: 'CONFIG_INVALID', problem: `${path} is not an unencrypted SSH private key` };
  if (!parsed.isPrivateKey()) return { code: 'CONFIG_INVALID', problem: `${path} is a public key; give the private key` };
  return undefined;
}

/**
 * Checks every entry's key file before anything is recorded or sent: one error naming each
 * entry at fault (CONFIG_INVALID; FILE_ACCESS or INSECURE_FILE_MODE when that is the first problem).
 */
export function checkInventoryKeys(hosts: InventoryHost[], source: string): void {
  const problems = hosts.flatMap((h, i) => {
    const p = h.key === undefined ? undefined : keyProblem(h.key);
    return p ? [{ ...p, text: `hosts.${i} (${h.host}:${h.port}).key: ${p.problem}` }] : [];
  });
  const first = problems[0];
  if (!first) return;
  const issues = problems.map((p) => p.text);
  throw new GaxxError(first.code, `${source}: ${issues.join('; ')}`, { details: { issues } });
}

/**
 * Reads and validates an inventory file: NOT_FOUND when it does not exist, CONFIG_INVALID for a
 * directory, FILE_ACCESS when it cannot be read. With `checkKeys`, every entry's key file too.
 */
export function loadInventory(path: string, homeDir?: string, opts: { checkKeys?: boolean } = {}): InventoryHost[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw new GaxxError('CONFIG_INVALID', `inventory ${path} is a directory; give the inventory file (YAML) in it`, { cause: e });
    const access = fileAccessError(e);
    if (access) throw access;
    throw new GaxxError('NOT_FOUND', `inventory ${path} cannot be read: ${code ?? (e as Error).message}`, { cause: e });
  }
  const hosts = parseInventory(text, path, homeDir);
  if (opts.checkKeys) checkInventoryKeys(hosts, path);
  return hosts;
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
 * finds them again in a new process), `hostClaims` (InventoryClaims: which other fleet of this
 * home has a host), `homeDir`, `checkKeys` (check every entry's key file when the inventory is
 * read: spawn asks it; delete does not, so a fleet whose key is gone can still go).
 */
export function createSshProvider(settings: ProviderSettings): Provider {
  const o = settings.options ?? {};
  const hosts = Array.isArray(o.hosts)
    ? (o.hosts as InventoryHost[])
    : typeof o.inventory === 'string'
      ? loadInventory(o.inventory, typeof o.homeDir === 'string' ? o.homeDir : undefined, { checkKeys: o.checkKeys === true })
      : (() => {
          throw new GaxxError('USAGE', 'the ssh provider needs --inventory FILE');
        })();
  const byId = new Map<string, InventoryHost>(hosts.map((h) => [`${h.host}:${h.port}`, h]));
  // id -> fleet of every host handed out (or known from state).
  const claims = new Map<string, string>(Object.entries((o.claimed as Record<string, string> | undefined) ?? {}));
  const hostClaims = o.hostClaims as InventoryClaims | undefined;

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
      // Another fleet of this home may have it (hostClaims: its state, or its spawn under way).
      const other = owner !== undefined && owner !== req.fleet ? owner : hostClaims?.take(id, req.fleet);
      if (other !== undefined)
        throw new GaxxError(
          'ALREADY_EXISTS',
          `inventory host ${id} already belongs to fleet ${other}: its agent is that fleet's (gaxx delete ${other} frees the host; or list other hosts)`,
        );
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
      hostClaims?.release(id, fleet);
      return 'deleted';
    },
    async pricePerHour(): Promise<number | undefined> {
      return undefined;
    },
  };
}
