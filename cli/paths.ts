/**
 * The one on-disk layout of a gaxx installation. `GAXX_HOME=<dir>` relocates everything
 * (`<dir>/config`, `<dir>/state`); otherwise the XDG base directories are used.
 */
import { lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
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

/** NOT_FOUND for an installation without its operator certificate in `dir` (`gaxx init` makes it). */
export function noOperatorCertificate(dir: string, cause?: unknown): GaxxError {
  return new GaxxError('NOT_FOUND', `no operator certificate in ${dir}: run 'gaxx init' first`, cause === undefined ? undefined : { cause });
}

/**
 * INSECURE_FILE_MODE when another user could replace what the installation's home, config or
 * state dir holds (the CA, the operator key, the embedded Redis socket) and so take over every
 * fleet it runs: a dir writable by every user; a dir owned by another user (neither this one nor
 * root: its owner may change its mode and contents at will); or a dir below one of those, or
 * reached through a symlink of one (the owner, or anyone when every user may write a dir that
 * has no sticky bit, can put another dir in its place), as OpenSSH's StrictModes judges the dirs
 * of a user's keys. Both the path as given and its real path are walked up to /. Group-writable
 * is left alone: user-private groups make it common and harmless. `me` is this process's uid
 * (undefined where there are no uids: owners are then not compared).
 */
export function refuseSharedDirs(paths: GaxxPaths, me: number | undefined = process.getuid?.()): void {
  const checked = new Set<string>();
  for (const dir of [paths.home, paths.configDir, paths.stateDir]) {
    if (dir === undefined) continue;
    const st = statOf(dir, statSync);
    if (st === undefined) continue;
    if (st.mode & 0o002) {
      throw new GaxxError(
        'INSECURE_FILE_MODE',
        `${dir} is writable by every user (mode ${(st.mode & 0o7777).toString(8)}); run 'chmod o-w ${dir}' or use another GAXX_HOME`,
      );
    }
    let real = dir;
    try {
      real = realpathSync.native(dir);
    } catch {
      // checked as given
    }
    for (const start of new Set([dir, real])) {
      for (let path = start; !checked.has(path); path = dirname(path)) {
        checked.add(path);
        for (const s of [statOf(path, lstatSync), statOf(path, statSync)]) {
          if (s === undefined) continue;
          if (me !== undefined && s.uid !== me && s.uid !== 0) throw notOwn(dir, path, s.uid, me);
          if (path !== dir && s.mode & 0o002 && !(s.mode & 0o1000) && !s.isSymbolicLink())
            throw new GaxxError(
              'INSECURE_FILE_MODE',
              `${path} (on the way to ${dir}) is writable by every user without its sticky bit (mode ${(s.mode & 0o7777).toString(8)}): anyone could put another dir in the place of ${dir}; use a GAXX_HOME elsewhere`,
            );
        }
        if (dirname(path) === path) break;
      }
    }
  }
}

function statOf(path: string, how: typeof statSync | typeof lstatSync): Stats | undefined {
  try {
    return how(path);
  } catch {
    return undefined;
  }
}

function notOwn(dir: string, path: string, owner: number, me: number): GaxxError {
  return new GaxxError(
    'INSECURE_FILE_MODE',
    `${path === dir ? dir : `${path} (on the way to ${dir})`} belongs to uid ${owner}, not to this user (uid ${me}) or root: its owner could put another CA, operator key or Redis socket there and take over this installation's fleets; use a GAXX_HOME of your own`,
    { details: { dir, path, owner, uid: me } },
  );
}
