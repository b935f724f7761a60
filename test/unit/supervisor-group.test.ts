// The scripts that stop a host's supervisor (bootstrap's start script, as root, and delete's
// retire script, as gx) signal the process group its pid file names, and bootstrap reloads sshd
// by the pid in /run/sshd.pid on hosts without systemd. A pid file left by a process that died
// may name a pid given to another program since: that program is never signalled. Run here with
// sh on processes of this test, with pid files and a supervisor script of its own (the real
// ones are /run/gaxx-agent.pid, /opt/gaxx/agent/supervise.sh and /run/sshd.pid).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { reloadSshdShell, supervisorGroupShell } from '../../cli/bootstrap/index.js';

const dir = mkdtempSync(join(tmpdir(), 'gaxx-supervisor-group-'));
const pidFile = join(dir, 'gaxx-agent.pid');
const script = join(dir, 'supervise.sh');
writeFileSync(script, 'while :; do sleep 600; done\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Process groups started here (each its own session): ended after each test, whatever it did. */
const groups: ChildProcess[] = [];
afterEach(() => {
  for (const g of groups.splice(0)) {
    try {
      process.kill(-(g.pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A command in a session of its own (its pid is its group's id), and how its leader ends. */
function session(cmd: string, args: string[]): { child: ChildProcess; ended: Promise<NodeJS.Signals | null> } {
  const child = spawn(cmd, args, { detached: true, stdio: 'ignore' });
  groups.push(child);
  const ended = new Promise<NodeJS.Signals | null>((done) => child.once('exit', (_code, signal) => done(signal)));
  return { child, ended };
}

/** What the shell makes of `pidFile`: the group it would signal, or '' for none. */
function groupNamed(): Promise<string> {
  return new Promise((done, fail) =>
    execFile('/bin/sh', ['-c', `${supervisorGroupShell(pidFile, script)}\nprintf %s "$sup"`], (e, out) => (e ? fail(e) : done(out))),
  );
}

describe('the supervisor group a pid file names', () => {
  it('is the running supervisor, whose leader runs the supervisor script', async () => {
    const { child } = session('/bin/sh', [script]);
    writeFileSync(pidFile, `${child.pid}\n`);
    expect(await groupNamed()).toBe(String(child.pid));
  });

  it('is a group whose leader is gone but whose members live on (no process can have been given its pid)', async () => {
    // The leader starts a member of its group and exits.
    const { child, ended } = session('/bin/sh', ['-c', 'sleep 600 & exit 0']);
    await ended;
    writeFileSync(pidFile, `${child.pid}\n`);
    expect(await groupNamed()).toBe(String(child.pid));
  });

  it('is none when the pid now belongs to another program, which the stop scripts leave running', async () => {
    // Another program in a session of its own: its pid is a group id too, as a supervisor's was.
    const { child, ended } = session('sleep', ['600']);
    writeFileSync(pidFile, `${child.pid}\n`);
    expect(await groupNamed()).toBe('');
    // What the start script does with it: nothing; the program ends by our own signal.
    await new Promise<void>((done, fail) =>
      execFile('/bin/sh', ['-c', `${supervisorGroupShell(pidFile, script)}\nif [ -n "$sup" ]; then kill -TERM -"$sup"; fi`], (e) => (e ? fail(e) : done())),
    );
    child.kill('SIGINT');
    expect(await ended).toBe('SIGINT');
  });

  it('is none for a pid that no process and no group has, and for a pid file that is empty, garbage or missing', async () => {
    const { child, ended } = session('/bin/sh', ['-c', 'exit 0']);
    await ended;
    writeFileSync(pidFile, `${child.pid}\n`);
    expect(await groupNamed()).toBe('');
    for (const text of ['', 'x', '-1', '1 2', '$(id)']) {
      writeFileSync(pidFile, text);
      expect({ text, group: await groupNamed() }).toEqual({ text, group: '' });
    }
    rmSync(pidFile, { force: true });
    expect(await groupNamed()).toBe('');
  });
});

describe('the sshd reload on hosts without systemd', () => {
  const sshdPid = join(dir, 'sshd.pid');
  /** Runs the reload with `sshdPid`: its exit code and what it said. */
  const reload = (): Promise<{ code: number; stderr: string }> =>
    new Promise((done) =>
      execFile('/bin/sh', ['-eu', '-c', reloadSshdShell(sshdPid)], (e, _out, stderr) =>
        done({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stderr }),
      ),
    );

  it('refuses a pid that is not sshd, and leaves that program running', async () => {
    const { child, ended } = session('sleep', ['600']);
    writeFileSync(sshdPid, `${child.pid}\n`);
    expect(await reload()).toEqual({ code: 1, stderr: `pid ${child.pid} in ${sshdPid} is not sshd: not reloaded\n` });
    child.kill('SIGINT');
    expect(await ended).toBe('SIGINT');
  });

  it('refuses a pid file that is missing, empty or not a pid', async () => {
    for (const text of [undefined, '', 'sshd', '1; id']) {
      if (text === undefined) rmSync(sshdPid, { force: true });
      else writeFileSync(sshdPid, text);
      expect({ text, ...(await reload()) }).toEqual({ text, code: 1, stderr: `no sshd pid in ${sshdPid}\n` });
    }
  });
});
