/**
 * The local provider's files outside its state dir: the run dir (the installed agent bundle, and
 * a folder per installation holding its agents' files), made so that the agent user can reach
 * its own files and nothing else.
 */
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, lstatSync, readdirSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { makeDirs } from '../../proto/index.js';
import { checkOwnDir } from '../local-dirs.js';
import { agentBundlePath, installAgentBundle } from './agent-bundle.js';

/** The user agents run as when we are root (nobody). */
export const LOCAL_AGENT_UID = 65534;
export const LOCAL_AGENT_GID = 65534;

/**
 * The run dir this user's installations share (the default runDir, and the home of the address
 * claims of all of them whatever their runDir): `<tmpdir>/gaxx-local-<uid>`.
 */
export function userRunDir(): string {
  return join(tmpdir(), `gaxx-local-${process.getuid?.() ?? 'u'}`);
}

/** What tells this installation (its state dir) from the others sharing the run dir. */
export function installationKey(stateDir: string): string {
  return createHash('sha256').update(resolve(stateDir)).digest('hex').slice(0, 16);
}

/**
 * This installation's folder in the run dir: named after its state dir (one per GAXX_HOME), 0711
 * like the run dir (the agent user passes through it to its own files).
 */
export function installationDir(runDir: string, stateDir: string): string {
  const dir = join(runDir, `home-${installationKey(stateDir)}`);
  makeDirs(dir, { mode: 0o711 });
  chmodSync(dir, 0o711);
  return dir;
}

/**
 * Removes the installation dir that held the host dir `hostDir` once it holds nothing else (its
 * last host was destroyed): rmdir fails on a dir that is not empty, so a host another create
 * has just made there keeps it, and the create (local.ts layOutAgent) sets the dir's mode again
 * once its host dir is in it (a create that lost the dir in between made it again with the mode
 * of its umask).
 */
export function removeEmptyInstallationDir(runDir: string, hostDir: string): void {
  const home = dirname(hostDir);
  if (resolve(dirname(home)) !== resolve(runDir) || !basename(home).startsWith('home-')) return;
  try {
    rmdirSync(home);
  } catch {
    // Not empty (another host of this installation), or already gone.
  }
}

/** Root-owned 0711 run dir (others may traverse, not list) holding the installed bundle. */
export function prepareRunDir(runDir: string, agentBundle: string | undefined): string {
  makeDirs(runDir, { mode: 0o711 });
  checkOwnDir(runDir, 'the local fleet run dir');
  chmodSync(runDir, 0o711);
  return installAgentBundle({ source: agentBundle ?? agentBundlePath(), dir: join(runDir, 'bin') });
}

/** Gives `p` and everything under it to the agent user. */
export function chownTree(p: string): void {
  chownSync(p, LOCAL_AGENT_UID, LOCAL_AGENT_GID);
  if (lstatSync(p).isDirectory()) for (const e of readdirSync(p)) chownTree(join(p, e));
}
