// The processes test helpers start (agents, redis-servers, test hosts, gaxx) die with the test
// process that started them, however it dies: a SIGKILLed test runner left them as orphans.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { eventually } from '../helpers/poll.js';
import { awaitPidsWith, dyingWithTest, noneLeft, pidsWith, sleepMarker, statFields } from '../helpers/procs.js';

/** Starts a node process that starts `[file, args]` and prints its pid; the starter's pid and it. */
async function starter(cmd: [string, string[]]): Promise<{ parent: number; child: number }> {
  const code =
    "const c = require('node:child_process').spawn(...JSON.parse(process.argv[1]), { stdio: 'ignore' }); console.log(c.pid); setInterval(() => {}, 1e6);";
  const p = spawn(process.execPath, ['-e', code, JSON.stringify(cmd)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    p.on('exit', (c) => reject(new Error(`starter exited ${String(c)}`)));
  });
  return { parent: p.pid as number, child: Number(line) };
}

describe('dyingWithTest', () => {
  it.each([['TERM' as const], ['KILL' as const]])('a process started with it ends when its starter is SIGKILLed (%s)', async (signal) => {
    const marker = sleepMarker();
    const { parent, child } = await starter(dyingWithTest('sleep', [marker], signal));
    expect(await awaitPidsWith(marker, 1)).toBe(1);
    // The same process (setpriv execs the command): the pid the starter got is the sleep's.
    expect(pidsWith(marker)).toEqual([child]);
    expect(statFields(child)?.[1]).toBe(String(parent));
    process.kill(parent, 'SIGKILL');
    expect(await noneLeft(marker, 20_000)).toBe(true);
  });

  it('without it the same process outlives its starter (what the helpers did before)', async () => {
    const marker = sleepMarker();
    const { parent, child } = await starter(['sleep', [marker]]);
    expect(await awaitPidsWith(marker, 1)).toBe(1);
    process.kill(parent, 'SIGKILL');
    // Re-parented, still running.
    await eventually(() => statFields(child)?.[1] !== String(parent), 20_000, 20);
    expect(pidsWith(marker)).toEqual([child]);
    process.kill(child, 'SIGKILL');
    expect(await noneLeft(marker, 20_000)).toBe(true);
  });
});
