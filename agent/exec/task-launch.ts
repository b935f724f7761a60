/**
 * How tasks are launched on this host: the sandbox found at start (or opted out of), the task
 * launcher process, the agent's own paths tasks must not see, and whether tasks are refused.
 */
import { realpathSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { GaxxError, inside } from '../../proto/index.js';
import type { AgentConfig } from '../config.js';
import type { LaunchContext } from './exec.js';
import { inProcessRunner, Launcher } from './launcher.js';
import { detectSandbox, type Sandbox } from './sandbox.js';
import { tasksRoot } from './task-dirs.js';

/** Whether `dir` lies under /tmp, which a sandbox replaces with a private tmpfs. */
function underTmp(dir: string): boolean {
  const real = realOrResolved(dir);
  return inside('/tmp', real) && real !== '/tmp';
}

/**
 * The agent user's home, to hide from tasks, unless it is / or holds the data dir or a dir tasks
 * may write (a production agent's home may be its data area; its own dirs are hidden one by one).
 * An agent that runs as the operator (a local fleet started by a user other than root) has the
 * operator's home there: SSH keys, gaxx's config with the fleet CA's key, cloud tokens.
 */
export function homeToHide(config: Pick<AgentConfig, 'dataDir' | 'taskWritable'>, home: string | undefined): string | undefined {
  if (!home || !home.startsWith('/') || resolve(home) === '/') return undefined;
  // Compared as the sandbox will mount them, through symlinks (a data dir linked into the home).
  const realHome = realOrResolved(home);
  if ([config.dataDir, ...config.taskWritable].some((d) => inside(realHome, realOrResolved(d)))) return undefined;
  return home;
}

/** `p` with its symlinks resolved, or as given (made absolute) when it does not exist yet. */
function realOrResolved(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

/** The home dir of the user this process runs as (its passwd entry), if it has one. */
function ownHome(): string | undefined {
  try {
    return userInfo().homedir;
  } catch {
    return undefined;
  }
}

/** The sandbox tasks run in (none when opted out or unavailable). */
export async function taskSandbox(config: AgentConfig): Promise<Sandbox> {
  if (config.unsafeNoIsolation) return { kind: 'none', detail: 'disabled by --unsafe-no-isolation', remedy: 'start the agent without --unsafe-no-isolation' };
  return detectSandbox(config.bwrapPath);
}

/** The launcher, the sandbox and the paths tasks are launched with. */
export function taskLaunch(config: AgentConfig, sandbox: Sandbox, uid: number, log: Logger): LaunchContext {
  const runner = Launcher.available() ? new Launcher((detail) => log.error({ detail }, 'task launcher died')) : inProcessRunner;
  const runUser = uid >= 0 ? `/run/user/${uid}` : undefined;
  const home = homeToHide(config, ownHome());
  const hide = [...(runUser ? [runUser] : []), ...(home ? [home] : []), ...config.taskHidden];
  return {
    runner,
    sandbox,
    workRoot: config.dataDir,
    paths: {
      certsDir: config.certsDir,
      auditDir: dirname(config.auditLog),
      stateDir: config.stateDir,
      hide,
      writable: config.taskWritable,
      tmpBytes: config.taskLimits.addressSpaceBytes,
      dataDir: config.dataDir,
      dataDirUnderTmp: underTmp(config.dataDir),
    },
    warm: { count: config.warmSandboxes, tasksDir: tasksRoot(config.dataDir) },
  };
}

/** Why tasks are refused on this agent, if they are: no sandbox in production without the opt-out. */
export function tasksRefusal(config: AgentConfig, sandbox: Sandbox): GaxxError | undefined {
  if (sandbox.kind !== 'none' || config.unsafeNoIsolation || config.environment !== 'production') return undefined;
  return new GaxxError(
    'ISOLATION_UNAVAILABLE',
    `this host cannot isolate tasks (${sandbox.detail}); ${sandbox.remedy}, or start the agent with --unsafe-no-isolation to run tasks with the agent's privileges`,
  );
}
