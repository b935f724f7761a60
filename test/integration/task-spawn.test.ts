// The launcher's two ways of starting a task's process (agent/exec/task-spawn.ts), on the built
// module (run `npm run build` first): vfork and exec through gaxx-spawn.node, and child_process's
// fork with prlimit. Both must give the same child: its exit code or signal, its output on its
// own pipes, its rlimits, exactly the env and work dir given, a session of its own, no signal
// ignored or blocked, none of the spawner's pipes, and the same errors for a command that
// cannot start.
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { TaskChild, TaskSpawnOptions } from '../../agent/exec/task-spawn.js';
import { withInherited } from '../helpers/procs.js';
import { hasCompiler } from '../helpers/bundle.js';

const built = resolve(__dirname, '../../dist/agent/exec/task-spawn.js');
const { spawnMethod, spawnTask } = (await import(built)) as typeof import('../../agent/exec/task-spawn.js');
const dir = mkdtempSync(join(tmpdir(), 'gaxx-task-spawn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Ran {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  events: string[];
}

/** Runs one process to its 'close'; `error` when it could not start. */
function run(file: string, args: string[], o: Partial<TaskSpawnOptions> & { stdin?: string; fd3?: string } = {}): Promise<Ran | { error: string }> {
  return new Promise((res) => {
    const child: TaskChild = spawnTask(file, args, { cwd: dir, env: { PATH: '/usr/bin:/bin' }, fds: o.fd3 === undefined ? 3 : 4, ...o });
    const r: Ran = { code: null, signal: null, stdout: '', stderr: '', events: [] };
    child.on('error', (e: NodeJS.ErrnoException) => res({ error: e.code ?? e.message }));
    if (!child.pid) return;
    // A process that exits before reading its stdin or fd 3 closes the pipe: EPIPE there is no
    // failure of the spawn (the launcher ignores it the same way).
    for (const s of [child.stdin, child.stdio[3]]) (s as NodeJS.EventEmitter | null | undefined)?.on('error', () => undefined);
    child.stdin?.end(o.stdin ?? '');
    if (o.fd3 !== undefined) (child.stdio[3] as NodeJS.WritableStream).end(o.fd3);
    child.stdout?.on('data', (d: Buffer) => (r.stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (r.stderr += d.toString()));
    child.on('exit', () => r.events.push('exit'));
    child.on('close', (code: number | null, signal: string | null) => {
      r.events.push('close');
      res({ ...r, code, signal });
    });
  });
}

async function ran(file: string, args: string[], o: Parameters<typeof run>[2] = {}): Promise<Ran> {
  const r = await run(file, args, o);
  if ('error' in r) throw new Error(`${file} did not start: ${r.error}`);
  return r;
}

describe('task spawn', () => {
  it('uses the native spawn where the build had a C compiler (GAXX_SPAWN unset)', () => {
    expect(process.env.GAXX_SPAWN).toBeUndefined();
    if (!hasCompiler) return expect(spawnMethod().native).toBe(false);
    expect(spawnMethod()).toEqual({ native: true, detail: 'vfork (gaxx-spawn.node)' });
  });

  it('refuses a NUL in the command, an argument, an env value or the work dir instead of cutting it short', async () => {
    for (const [file, args, env, cwd] of [
      ['tr\0ue', [], {}, dir],
      ['echo', ['a\0b'], {}, dir],
      ['echo', [], { X: 'a\0b' }, dir],
      ['echo', [], {}, `${dir}\0/x`],
    ] as Array<[string, string[], Record<string, string>, string]>) {
      if (spawnMethod().native) expect(await run(file, args, { cwd, env: { PATH: '/usr/bin:/bin', ...env } })).toEqual({ error: 'EINVAL' });
      expect(() => spawnTask(file, args, { cwd, env: { PATH: '/usr/bin:/bin', ...env }, fds: 3, fork: true })).toThrow(/null bytes|NUL|\\0/i);
    }
  });

  it('passes on none of the descriptors the spawning process holds without close-on-exec (native spawn)', async () => {
    if (!hasCompiler) return expect(spawnMethod().native).toBe(false);
    const leftOpen = join(dir, 'left-open');
    writeFileSync(leftOpen, '');
    const fd = openSync(leftOpen, 'r');
    // A process given fd 40 without close-on-exec (Node marks only fds 0-15 it starts with
    // close-on-exec) spawns a task that lists its own shell's fds; it prints where its own fd 40
    // points first.
    const script = [
      `import { readlinkSync } from 'node:fs';`,
      `import { spawnTask } from ${JSON.stringify(pathToFileURL(built).href)};`,
      `process.stdout.write(readlinkSync('/proc/self/fd/40') + '\\n');`,
      `const c = spawnTask('sh', ['-c', 'ls /proc/$$/fd; :'], { cwd: ${JSON.stringify(dir)}, env: { PATH: '/usr/bin:/bin' }, fds: 3 });`,
      `c.stdin.end(); c.stdout.pipe(process.stdout);`,
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: withInherited(['ignore', 'pipe', 'inherit'], [[40, fd]]) });
    closeSync(fd);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    expect(await new Promise((r) => child.on('close', r))).toBe(0);
    const [held, ...taskFds] = out.trim().split('\n');
    expect(held).toBe(leftOpen);
    expect(taskFds.map(Number)).toEqual([0, 1, 2]);
  });

  for (const fork of [false, true]) {
    describe(fork ? 'through child_process' : 'through the native spawn', () => {
      const o = { fork };

      it('gives the exit code, stdout and stderr on their own pipes, stdin and fd 3', async () => {
        const r = await ran('sh', ['-c', 'cat; cat <&3 >&2; exit 3'], { ...o, stdin: 'in', fd3: 'three' });
        expect(r).toEqual({ code: 3, signal: null, stdout: 'in', stderr: 'three', events: ['exit', 'close'] });
      });

      it('gives a descriptor of the spawner as its last fd (a copy: closing ours at once leaves the child’s)', async () => {
        const sub = mkdtempSync(join(dir, 'given-'));
        const held = openSync(sub, 'r');
        const started = run('sh', ['-c', 'cat <&3; readlink /proc/$$/fd/4'], { ...o, fd3: 'three', fds: 5, given: held });
        closeSync(held);
        expect(await started).toMatchObject({ code: 0, stdout: `three${sub}\n` });
        // child_process throws it at once instead.
        if (!fork) expect(await run('true', [], { ...o, fds: 5, given: 987 })).toEqual({ error: 'EBADF' });
        else expect(() => spawnTask('true', [], { cwd: dir, env: {}, fds: 5, given: 987, fork })).toThrow(/EBADF/);
      });

      it('reports a death by signal by its name, and all output before close', async () => {
        const r = await ran('sh', ['-c', 'head -c 1048576 /dev/zero; kill -TERM $$'], o);
        expect([r.code, r.signal, r.stdout.length]).toEqual([null, 'SIGTERM', 1048576]);
      });

      it('gives exactly the env and work dir, a session of its own, no signal ignored or blocked, no other fd', async () => {
        const script = 'env; pwd; cat /proc/$$/stat; ls -l /proc/$$/fd';
        const r = await ran('sh', ['-c', script], {
          ...o,
          env: { PATH: '/usr/bin:/bin', ONLY: 'this' },
        });
        const lines = r.stdout.trim().split('\n');
        expect(lines.filter((l) => /^[A-Z_]+=/.test(l) && !l.startsWith('PWD=')).sort()).toEqual(['ONLY=this', 'PATH=/usr/bin:/bin']);
        expect(lines).toContain(dir);
        const stat = (lines.find((l) => /^\d+ \(sh\)/.test(l)) ?? '').split(' ');
        expect(stat[4]).toBe(stat[0]); // process group = pid
        expect(stat[5]).toBe(stat[0]); // session = pid
        // Read by the spawned process itself (a shell blocks signals of its own while it waits).
        const sig = await ran('grep', ['-E', '^Sig(Ign|Blk)', '/proc/self/status'], o);
        expect(sig.stdout.split('\n').sort()).toEqual(['', 'SigBlk:\t0000000000000000', 'SigIgn:\t0000000000000000']);
        const fds = lines.flatMap((l) => /\s(\d+) -> (.*)$/.exec(l)?.slice(1) ?? []);
        const byFd = new Map(Array.from({ length: fds.length / 2 }, (_, i) => [Number(fds[2 * i]), fds[2 * i + 1] as string]));
        expect([0, 1, 2].every((n) => byFd.has(n))).toBe(true);
        // Beyond 0-2 only what this test's process was itself given without close-on-exec by
        // whatever started it: none of the spawner's pipes.
        for (const [n, target] of byFd) if (n > 2) expect(readlinkSync(`/proc/self/fd/${n}`)).toBe(target);
      });

      it('starts it with the rlimits given (by the spawn itself, or by prlimit through child_process)', async () => {
        const rlimits = { prlimit: '/usr/bin/prlimit', cpu: [5, 7] as [number, number], as: 2 ** 32, nproc: 777 };
        const r = await ran('cat', ['/proc/self/limits'], { ...o, rlimits });
        const limit = (name: string) => new RegExp(`^${name}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(r.stdout)?.slice(1);
        expect(limit('Max cpu time')).toEqual(['5', '7']);
        expect(limit('Max address space')).toEqual([String(2 ** 32), String(2 ** 32)]);
        expect(limit('Max processes')).toEqual(['777', '777']);
        // And none but those: the rest as this process has them.
        expect(limit('Max open files')).toEqual(
          new RegExp('^Max open files\\s+(\\S+)\\s+(\\S+)', 'm').exec(readFileSync('/proc/self/limits', 'utf8'))?.slice(1),
        );
      });

      it('finds the command in the child’s PATH, and runs a script without #! with sh', async () => {
        const bin = mkdtempSync(join(dir, 'bin-'));
        writeFileSync(join(bin, 'hello'), 'echo hello from "$0"\n');
        chmodSync(join(bin, 'hello'), 0o755);
        const r = await ran('hello', [], { ...o, env: { PATH: bin } });
        expect([r.code, r.stdout]).toEqual([0, `hello from ${join(bin, 'hello')}\n`]);
        // A relative PATH entry is taken from the child's work dir, not the spawner's.
        const rel = await ran('hello', [], { ...o, cwd: dirname(bin), env: { PATH: `nowhere:${basename(bin)}` } });
        expect(rel.code).toBe(0);
        expect(rel.stdout).toMatch(new RegExp(`^hello from (\\./)?(${dirname(bin)}/)?${basename(bin)}/hello\\n$`));
      });

      it('refuses what cannot start with the errno execvp gives: missing, not executable, no such work dir', async () => {
        writeFileSync(join(dir, 'plain'), 'echo never\n', { mode: 0o644 });
        expect(await run('no-such-command-here', [], o)).toEqual({ error: 'ENOENT' });
        expect(await run(join(dir, 'plain'), [], o)).toEqual({ error: 'EACCES' });
        expect(await run('plain', [], { ...o, env: { PATH: dir } })).toEqual({ error: 'EACCES' });
        expect(await run('true', [], { ...o, cwd: join(dir, 'missing') })).toEqual({ error: 'ENOENT' });
      });
    });
  }
});
