/**
 * N OpenSSH hosts on this machine for the fan-out bench: one `sshd` process per host, each on
 * its own loopback address (127.0.1.1, 127.0.1.2, ...), key authentication only, host keys
 * pinned in a known_hosts file (strict checking), logging in as a bench user whose shell is
 * /bin/sh with no rc files (root's .bashrc here runs pyenv, which a fresh VM would not).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The bench's login user (created when missing, removed again by stop()). */
export const BENCH_USER = 'gaxx-bench';

export interface SshdHosts {
  /** '127.0.1.1', ... */
  hosts: string[];
  port: number;
  /** ssh client options: strict host keys, our key only, batch mode, no user config. */
  sshOptions: string[];
  user: string;
  stop(): Promise<void>;
}

function must(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/** Creates the bench user when missing; true when we created it (and so remove it later). */
function ensureUser(home: string): boolean {
  if (spawnSync('id', ['-u', BENCH_USER]).status === 0) return false;
  // Password '*': no password login, but not a locked account (sshd without PAM refuses locked ones).
  must('useradd', ['--system', '--home-dir', home, '--shell', '/bin/sh', '--password', '*', BENCH_USER]);
  return true;
}

async function waitForPort(host: string, port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd on ${host}:${port} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((r) => {
      const s = connect({ host, port }, () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`sshd on ${host}:${port} did not listen within ${timeoutMs} ms`);
    await sleep(20);
  }
}

function sshdConfig(dir: string, host: string, port: number): string {
  return [
    `ListenAddress ${host}:${port}`,
    `HostKey ${join(dir, 'host_key')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, '..', 'authorized_keys')}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin no',
    `AllowUsers ${BENCH_USER}`,
    'UsePAM no',
    // The key files sit under the temp dir (world-writable /tmp): StrictModes would refuse them.
    'StrictModes no',
    'LogLevel ERROR',
    '',
  ].join('\n');
}

/** Starts `n` sshd hosts under `dir` (which must be traversable by the bench user: 0711). */
export async function startSshdHosts(n: number, dir: string, port = 2200): Promise<SshdHosts> {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const home = join(dir, 'home');
  mkdirSync(home, { recursive: true, mode: 0o755 });
  const created = ensureUser(home);
  chownSync(home, Number(must('id', ['-u', BENCH_USER]).trim()), Number(must('id', ['-g', BENCH_USER]).trim()));
  const key = join(dir, 'client_key');
  must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'gaxx-bench', '-f', key]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${key}.pub`), { mode: 0o644 });
  const hosts = Array.from({ length: n }, (_, i) => `127.0.1.${i + 1}`);
  const known: string[] = [];
  const procs: ChildProcess[] = [];
  try {
    for (const [i, host] of hosts.entries()) {
      const hdir = join(dir, `host-${i + 1}`);
      mkdirSync(hdir, { recursive: true, mode: 0o700 });
      must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(hdir, 'host_key')]);
      const pub = readFileSync(join(hdir, 'host_key.pub'), 'utf8').trim().split(' ');
      known.push(`[${host}]:${port} ${pub[0]} ${pub[1]}`);
      writeFileSync(join(hdir, 'sshd_config'), sshdConfig(hdir, host, port));
      procs.push(spawn('/usr/sbin/sshd', ['-D', '-f', join(hdir, 'sshd_config')], { stdio: 'ignore' }));
    }
    await Promise.all(hosts.map((h, i) => waitForPort(h, port, procs[i] as ChildProcess, 15_000)));
  } catch (e) {
    procs.forEach((p) => p.kill('SIGTERM'));
    throw e;
  }
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `${known.join('\n')}\n`);
  chmodSync(key, 0o600);
  const sshOptions = [
    '-F',
    '/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    `IdentityFile=${key}`,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'LogLevel=ERROR',
  ];
  return {
    hosts,
    port,
    sshOptions,
    user: BENCH_USER,
    async stop() {
      await Promise.all(
        procs.map((p) =>
          p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => (p.once('exit', () => r()), p.kill('SIGTERM'))),
        ),
      );
      if (created) spawnSync('userdel', [BENCH_USER]);
    },
  };
}
