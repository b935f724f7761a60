/**
 * The one on-disk layout of a gaxx installation. `GAXX_HOME=<dir>` relocates everything
 * (`<dir>/config`, `<dir>/state`); otherwise the XDG base directories are used.
 */
import { join } from 'node:path';
import { GaxxError } from '../proto/index.js';

/** Where every file of an installation lives. */
export interface GaxxPaths {
  /** Set when GAXX_HOME (or --home) relocated the installation. */
  home: string | undefined;
  /** Config, keys and certificates: `<home>/config` or `$XDG_CONFIG_HOME/gaxx`. */
  configDir: string;
  /** `<configDir>/config.json` (optional). */
  configFile: string;
  /** The fleet CA (ca.pem, ca-key.pem 0600, issued.json, revoked.json). */
  caDir: string;
  /** The operator's client cert dir (cert.pem, key.pem, ca.pem, revoked.json). */
  operatorCertDir: string;
  /** Ed25519 SSH key pair used to reach fleet hosts. */
  sshDir: string;
  sshPrivateKey: string;
  sshPublicKey: string;
  /** Runtime state: `<home>/state` or `$XDG_STATE_HOME/gaxx`. */
  stateDir: string;
  /** Per-run records. */
  runsDir: string;
  /** Per-fleet records (hosts, pinned host keys). */
  fleetsDir: string;
}

/**
 * Resolves the layout. `stateDir` relocates the state dir alone; `home` wins over XDG; relative XDG values are ignored, as the XDG spec
 * asks. `homeDir` is the user's home directory (for the XDG defaults).
 */
export function resolvePaths(opts: {
  home?: string | undefined;
  xdgConfigHome?: string | undefined;
  xdgStateHome?: string | undefined;
  homeDir: string;
  stateDir?: string | undefined;
}): GaxxPaths {
  const abs = (p: string | undefined) => (p && p.startsWith('/') ? p : undefined);
  const configDir = opts.home ? join(opts.home, 'config') : join(abs(opts.xdgConfigHome) ?? join(opts.homeDir, '.config'), 'gaxx');
  const stateDir = opts.stateDir ?? (opts.home ? join(opts.home, 'state') : join(abs(opts.xdgStateHome) ?? join(opts.homeDir, '.local', 'state'), 'gaxx'));
  const sshDir = join(configDir, 'ssh');
  return {
    home: opts.home,
    configDir,
    configFile: join(configDir, 'config.json'),
    caDir: join(configDir, 'ca'),
    operatorCertDir: join(configDir, 'operator'),
    sshDir,
    sshPrivateKey: join(sshDir, 'id_ed25519'),
    sshPublicKey: join(sshDir, 'id_ed25519.pub'),
    stateDir,
    runsDir: join(stateDir, 'runs'),
    fleetsDir: join(stateDir, 'fleets'),
  };
}

/** The mode bits of a path, or undefined when it does not exist. */
export type ModeOf = (path: string) => number | undefined;

/** NOT_FOUND for an installation without its operator certificate in `dir` (`gaxx init` makes it). */
export function noOperatorCertificate(dir: string, cause?: unknown): GaxxError {
  return new GaxxError('NOT_FOUND', `no operator certificate in ${dir}: run 'gaxx init' first`, cause === undefined ? undefined : { cause });
}

/**
 * INSECURE_FILE_MODE when the installation's home, config or state dir is writable by every
 * user: anyone could then replace the CA, the operator key or the embedded Redis socket.
 * (Group-writable is left alone: user-private groups make it common and harmless.)
 */
export function refuseSharedDirs(paths: GaxxPaths, modeOf: ModeOf): void {
  for (const dir of [paths.home, paths.configDir, paths.stateDir]) {
    if (dir === undefined) continue;
    const mode = modeOf(dir);
    if (mode === undefined) continue;
    if (mode & 0o002) {
      throw new GaxxError(
        'INSECURE_FILE_MODE',
        `${dir} is writable by every user (mode ${(mode & 0o7777).toString(8)}); run 'chmod o-w ${dir}' or use another GAXX_HOME`,
      );
    }
  }
}
