/**
 * How tasks are launched on this host: the sandbox found at start (or opted out of), the task
 * launcher process, the agent's own paths tasks must not see, and whether tasks are refused.
 */
import { realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { GaxxError, inside } from '../../proto/index.js';
import type { AgentConfig } from '../config.js';
import type { LaunchContext } from './exec.js';
import { inProcessRunner, Launcher } from './launcher.js';
import { detectSandbox, type Sandbox } from './sandbox.js';
import { tasksRoot } from './tasks.js';

/** Whether `dir` lies under /tmp, which a sandbox replaces with a private tmpfs. */
function underTmp(dir: string): boolean {
  let real = dir;
  try {
    real = realpathSync(dir);
  } catch {
    // Not there yet: as given.
  }
  return inside('/tmp', real) && real !== '/tmp';
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
  const hide = runUser ? [runUser] : [];
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
      ...(underTmp(config.dataDir) ? { dataDirInTmp: config.dataDir } : {}),
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
