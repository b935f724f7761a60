import { rmSync } from 'node:fs';
import { stopAllAgents } from '../../test/helpers/agent.js';
import { destroyAllRedis } from '../../test/helpers/redis.js';

/**
 * What a bench started (agents, redis-servers, sshd hosts, a daemon) must not outlive it: a bench
 * stopped by Ctrl-C (SIGINT) or by `timeout` or kill (SIGTERM) runs `cleanup`, then exits as a
 * process killed by that signal would (130, 143). Its own clean-up once done stays as it is; the
 * returned function removes the handlers.
 */
export function cleanUpOnSignal(cleanup: () => Promise<void> | void): () => void {
  const off = (): void => {
    process.off('SIGINT', on);
    process.off('SIGTERM', on);
  };
  function on(signal: NodeJS.Signals): void {
    off();
    void Promise.resolve()
      .then(cleanup)
      .catch(() => undefined)
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  }
  process.once('SIGINT', on);
  process.once('SIGTERM', on);
  return off;
}

/**
 * A bench's clean-up, on its way out and on a signal alike: every agent and redis-server this
 * process started through the test helpers is stopped, then `dir` removed.
 */
export async function stopStarted(dir: string): Promise<void> {
  await stopAllAgents();
  await destroyAllRedis();
  rmSync(dir, { recursive: true, force: true });
}
