// The shell a warm sandbox waits in (agent/exec/warm-pool.ts INNER), on the built modules (run
// `npm run build` first), without the sandbox around it: given a task's script on fd 4, through
// the native spawn (fd 4 a pipe: the script is sourced) and through child_process (a socket:
// read with `read` and eval'd), it runs exactly the task, with only fds 0-2 and exactly its env;
// a script cut short runs nothing.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dist = resolve(__dirname, '../../dist/agent/exec');
const { spawnMethod, spawnTask } = (await import(join(dist, 'task-spawn.js'))) as typeof import('../../agent/exec/task-spawn.js');
const { INNER, taskScript } = (await import(join(dist, 'warm-pool.js'))) as typeof import('../../agent/exec/warm-pool.js');
const dir = mkdtempSync(join(tmpdir(), 'gaxx-warm-script-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts the warm shell, waits for its ready byte, then gives it `script` on fd 4 and `stdin`. */
function runWarm(script: string, fork: boolean, stdin = ''): Promise<Ran> {
  const child = spawnTask('/bin/dash', ['-c', INNER], { cwd: dir, env: {}, fds: 5, fork });
  for (const s of child.stdio) (s as NodeJS.EventEmitter | null)?.on('error', () => undefined);
  (child.stdio[3] as NodeJS.WritableStream).end();
  const r: Ran = { code: null, stdout: '', stderr: '' };
  return new Promise((res) => {
    child.stdout?.on('data', (d: Buffer) => {
      const ready = r.stdout === '';
      r.stdout += d.toString();
      if (ready && r.stdout.startsWith('R')) {
        (child.stdio[4] as NodeJS.WritableStream).end(script);
        child.stdin?.end(stdin);
      }
    });
    child.stderr?.on('data', (d: Buffer) => (r.stderr += d.toString()));
    child.on('close', (code: number | null) => res({ ...r, code, stdout: r.stdout.slice(1) }));
  });
}

const ways = spawnMethod().native ? [false, true] : [true];

for (const fork of ways) {
  describe(
    fork ? 'a warm shell started through child_process (script on a socket)' : 'a warm shell started through the native spawn (script on a pipe)',
    () => {
      it('runs exactly the task: its argv, its env and nothing of the shell, its stdin, fds 0-2 only', async () => {
        const argv = ['/bin/sh', '-c', 'printf "[%s]\\n" "$@"; env | sort; cat; ls /proc/$$/fd; :', 'sh', "it's", 'two\nlines', '$HOME', '*'];
        const script = taskScript(argv, { PATH: '/usr/bin:/bin', QUOTED: 'a\'b"c$d`e`', MULTI: 'x\ny' }) as string;
        const r = await runWarm(script, fork, 'from stdin\n');
        const out = r.stdout.split('from stdin\n');
        expect({ ...r, stdout: out[0] }).toEqual({
          code: 0,
          // Sorted, MULTI's second line comes last.
          stdout: `[it's]\n[two\nlines]\n[$HOME]\n[*]\nMULTI=x\nPATH=/usr/bin:/bin\nPWD=${dir}\nQUOTED=a'b"c$d\`e\`\ny\n`,
          stderr: '',
        });
        const fds = (out[1] ?? '').trim().split('\n').map(Number);
        // Fds 3 and 4 closed; the native spawn passes on nothing else. child_process passes on
        // what this test's process was given without close-on-exec (the launcher closes those as it starts).
        if (fork) expect([fds.slice(0, 3), fds.filter((n) => n === 3 || n === 4)]).toEqual([[0, 1, 2], []]);
        else expect(fds).toEqual([0, 1, 2]);
      });

      it('runs nothing of a script cut short, wherever it was cut', async () => {
        const marker = join(dir, `ran-${fork ? 'fork' : 'native'}`);
        const script = taskScript(['/usr/bin/touch', marker, `${marker}-too`], { PATH: '/usr/bin:/bin' }) as string;
        // Cut after the exec line's first argument (run, that would touch the marker), and right
        // before the closing brace (that would run all of it).
        const firstArg = script.indexOf(`'${marker}' `);
        expect(firstArg).toBeGreaterThan(0);
        for (const cut of [firstArg + marker.length + 3, script.lastIndexOf('}')]) {
          const r = await runWarm(script.slice(0, cut), fork);
          expect(r.code).toBe(2);
          expect(r.stderr).toMatch(/Syntax error: end of file unexpected/);
          expect(existsSync(marker)).toBe(false);
        }
        // The whole script does run it.
        expect((await runWarm(script, fork)).code).toBe(0);
        expect(existsSync(marker)).toBe(true);
      });
    },
  );
}
