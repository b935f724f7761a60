/**
 * A CLI started under a low open-file limit (`ulimit -n`, as a container or a service manager may
 * start it), with a descriptor it was given before the limit was lowered: the embedded
 * redis-server it starts is given /dev/null in place of each descriptor below the limit, and the
 * command works; a limit too low for redis-server itself is refused saying why. Before, the first
 * ended "internal error (this is a bug): spawn EINVAL" (70), and the second "embedded
 * redis-server did not start; see redis.log", the reason only in the log.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { runningServerPid } from '../../scheduler/redis/redis-server-process.js';
import { initHome } from '../helpers/cli-world.js';
import { CLI_MAIN, entryNodeFlags, gaxxEnv, runGaxx } from '../helpers/cli.js';

let home: string;

beforeAll(async () => {
  home = await initHome('gxlowfd-');
});
afterAll(async () => {
  // The last command's server stopped with it; one left by a failure is stopped here.
  if (runningServerPid(join(home, 'state', 'redis')) !== undefined) await runGaxx(['runs'], { home });
  rmSync(home, { recursive: true, force: true });
});

/** `gaxx ARGS` run by bash under `ulimit -n LIMIT`, with fd 200 open on /dev/null from before it when `fd200`. */
function underLimit(limit: number, fd200: boolean, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const argv = [process.execPath, ...entryNodeFlags(CLI_MAIN), CLI_MAIN, ...args];
  // stdin /dev/null: bash reads ~/.bashrc when its stdin is a socket (Node's pipes are).
  const child = spawn('bash', ['-c', `${fd200 ? 'exec 200</dev/null; ' : ''}ulimit -n ${limit} && exec "$@"`, 'bash', ...argv], {
    env: gaxxEnv({ home }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const text = { stdout: '', stderr: '' };
  child.stdout.on('data', (b: Buffer) => (text.stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (text.stderr += b.toString()));
  return new Promise((done) => child.once('close', (code) => done({ code, ...text })));
}

describe('a low open-file limit', () => {
  it('with a descriptor above the limit: the embedded redis-server starts and the command answers', async () => {
    const r = await underLimit(128, true, ['runs', '--json']);
    expect(r.stderr).not.toContain('internal error');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  it('too low for redis-server: UNAVAILABLE, saying what redis-server said', async () => {
    const r = await underLimit(24, false, ['runs', '--json']);
    expect(r.code, r.stderr).toBe(exitCodeFor('UNAVAILABLE'));
    expect(JSON.parse(r.stdout)).toMatchObject({
      error: { code: 'UNAVAILABLE', message: expect.stringMatching(/^embedded redis-server did not start: .*ulimit -n.*; see .*redis\.log$/) },
    });
  });
});
