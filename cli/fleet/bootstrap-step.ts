/**
 * The one seam between spawn and the bootstrap (cli/bootstrap/: hardening over Ed25519 SSH,
 * agent install, waiting for Health). Spawn calls only this file. While the bootstrap module is
 * not part of the build, user data is a minimal cloud-config (host name, gaxx's SSH key) and
 * bootstrapping fails with UNAVAILABLE, which spawn treats like any failed host: nothing it
 * created is left running.
 */
import { readFileSync } from 'node:fs';
import { GaxxError } from '../../proto/index.js';
import type { GaxxConfig } from '../config.js';

/** A host handed to the bootstrap. */
export interface BootstrapTarget {
  fleet: string;
  name: string;
  instanceId: string;
  address: string;
  port: number;
  user: string;
}

/** Per host: ready, or the error that stopped it. */
export type BootstrapOutcome = { ok: true } | { ok: false; error: GaxxError };

/** What spawn needs from the bootstrap. */
export interface BootstrapStep {
  /** cloud-init user data for a new cloud instance (e.g. its pinned host key). */
  userData(host: { fleet: string; name: string }): Promise<string>;
  /** Bootstraps the hosts in parallel; one outcome per host name. */
  run(targets: BootstrapTarget[], opts: { signal: AbortSignal; onProgress?: (name: string, step: string) => void }): Promise<Map<string, BootstrapOutcome>>;
}

interface BootstrapModule {
  bootstrapHosts(targets: BootstrapTarget[], options: Record<string, unknown>): Promise<Map<string, BootstrapOutcome> | Record<string, BootstrapOutcome>>;
  cloudInit?(host: { fleet: string; name: string }, options: Record<string, unknown>): Promise<string> | string;
}

// A variable specifier: the module is optional until it lands, and must not break the build.
const BOOTSTRAP_MODULE = '../bootstrap/index.js';

/** The bootstrap step for this configuration. */
export async function loadBootstrapStep(config: GaxxConfig): Promise<BootstrapStep> {
  let mod: BootstrapModule | undefined;
  try {
    mod = (await import(BOOTSTRAP_MODULE)) as BootstrapModule;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
  }
  const options = { config };
  return {
    userData: async (host) => (mod?.cloudInit ? await mod.cloudInit(host, options) : minimalCloudInit(host.name, config.paths.sshPublicKey)),
    run: async (targets, opts) => {
      if (!mod) throw new GaxxError('UNAVAILABLE', 'bootstrap not available in this build: hosts cannot be set up yet');
      const r = await mod.bootstrapHosts(targets, { ...options, ...opts });
      return r instanceof Map ? r : new Map(Object.entries(r));
    },
  };
}

/** A cloud-config that names the host and authorizes gaxx's SSH key (when `gaxx init` made one). */
export function minimalCloudInit(name: string, publicKeyPath: string): string {
  let key: string | undefined;
  try {
    key = readFileSync(publicKeyPath, 'utf8').trim();
  } catch {
    key = undefined;
  }
  return ['#cloud-config', `hostname: ${name}`, ...(key ? ['ssh_authorized_keys:', `  - ${key}`] : []), ''].join('\n');
}
