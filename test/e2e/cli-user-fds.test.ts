// Descriptors the CLI is started with are the user's (`--tasks <(cmd)` is /dev/fd/63, `exec 40<file`
// in a shell): the CLI keeps them while it starts its embedded redis-server, and the server, which
// outlives the command, holds none of them (a pipe's write end held there would keep the pipe's
// reader waiting). Fresh home, no GAXX_REDIS_URL: each command starts the embedded server.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runningServerPid } from '../../scheduler/redis/redis-server-process.js';
import { initHome } from '../helpers/cli-world.js';
import { CLI_MAIN, entryNodeFlags, gaxxEnv, jsonLines, runGaxx, spawnGaxx, stopAllGaxx, type GaxxProcess } from '../helpers/cli.js';
import { eventually } from '../helpers/poll.js';
import { fdsOn } from '../helpers/procs.js';
import { freePort } from '../helpers/ports.js';

const LONG = 300_000;
const FLEET = 'ufd';
let home: string;
let scratch: string;
let env: Record<string, string>;
const redisDir = (): string => join(home, 'state', 'redis');

beforeAll(async () => {
  home = await initHome('gxufd-');
  scratch = mkdtempSync(join(tmpdir(), 'gxufd-files-'));
  env = { GAXX_AGENT_PORT: String(await freePort()) };
  const made = await runGaxx(['spawn', '--provider', 'local', '--count', '2', '--fleet', FLEET, '--json'], { home, env, timeoutMs: LONG });
  expect(made.code, made.stderr).toBe(0);
}, LONG);

afterAll(async () => {
  await stopAllGaxx();
  if (home) await runGaxx(['delete', FLEET, '--yes'], { home, env, timeoutMs: LONG });
  for (const d of [home, scratch]) if (d) rmSync(d, { recursive: true, force: true });
}, LONG);

/** `gaxx ARGS` started with `file` open as its fd 40 (no close-on-exec: Node leaves fds above 15 so). */
function withFd40(file: string, args: string[]): GaxxProcess {
  const fd = openSync(file, 'r');
  try {
    return spawnGaxx(args, { home, env, fds: [[40, fd]] });
  } finally {
    closeSync(fd);
  }
}

/** The files `gaxx cp FLEET:job/payload DIR` wrote, one per host (DIR/<host>/payload). */
function readBack(dir: string): string[] {
  return readdirSync(dir).map((host) => readFileSync(join(dir, host, 'payload'), 'utf8'));
}

describe('descriptors the CLI is started with', () => {
  it(
    'gaxx cp /dev/fd/40 sends the file the descriptor reads',
    async () => {
      expect(runningServerPid(redisDir())).toBeUndefined();
      const file = join(scratch, 'payload');
      writeFileSync(file, 'payload 40\n');
      const cp = withFd40(file, ['cp', '/dev/fd/40', `${FLEET}:job/payload`, '--json']);
      const end = await cp.done;
      expect(end.code, end.stderr).toBe(0);
      const back = join(scratch, 'back');
      const got = await runGaxx(['cp', `${FLEET}:job/payload`, back], { home, env, timeoutMs: LONG });
      expect(got.code, got.stderr).toBe(0);
      expect(readBack(back)).toEqual(['payload 40\n', 'payload 40\n']);
    },
    LONG,
  );

  it(
    '--tasks <(cmd): the pipe is read after the embedded redis-server started, and the server does not hold it',
    async () => {
      expect(runningServerPid(redisDir())).toBeUndefined();
      // As bash runs `gaxx run --tasks <(cmd)`: a pipe (that cat writes from the test's stdin) as
      // the CLI's fd 40, inheritable, read through /dev/fd/40. The run lasts until its end.
      const cli = [process.execPath, ...entryNodeFlags(CLI_MAIN), CLI_MAIN, 'run', '--fleet', FLEET, '--tasks', '/dev/fd/40', '--json', '--', 'echo'];
      const run = spawn('bash', ['--norc', '--noprofile', '-c', 'exec 40< <(cat) </dev/null; exec "$0" "$@"', ...cli], {
        env: gaxxEnv({ home, env }),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const out = { stdout: '', stderr: '' };
      run.stdout.on('data', (b: Buffer) => (out.stdout += b.toString()));
      run.stderr.on('data', (b: Buffer) => (out.stderr += b.toString()));
      const code = new Promise<number | null>((r) => run.once('close', (c) => r(c)));
      try {
        run.stdin.write('p\n');
        // The first task ran: the server runs (until the run ends, after the pipe's end).
        expect(await eventually(() => out.stdout.includes('"type":"task"') || run.exitCode !== null, 60_000, 10), out.stderr).toBe(true);
        expect(run.exitCode, out.stderr).toBeNull();
        const pid = runningServerPid(redisDir()) as number;
        expect(pid).toBeGreaterThan(0);
        const pipe = readlinkSync(`/proc/${run.pid as number}/fd/40`);
        expect(pipe).toMatch(/^pipe:/);
        expect(fdsOn(pid, pipe)).toEqual([]);
        run.stdin.end('q\n');
        expect(await code, out.stderr).toBe(0);
        const tasks = jsonLines(out.stdout).filter((l) => l.type === 'task');
        expect(tasks.map((t) => t.stdout).sort()).toEqual(['p\n', 'q\n']);
      } finally {
        run.kill('SIGKILL');
      }
    },
    LONG,
  );
});
