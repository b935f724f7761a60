/**
 * Isolated OpenSSH test hosts that stand for fresh VMs. Each host is a real `sshd` on :22 of its
 * own network namespace (an address in 198.18.0.0/15 on a per-process bridge, see test-net.ts),
 * in its own mount, PID and UTS namespaces, with overlays over /etc, /home, /opt, /var, /root and
 * /usr (upper dirs in a temp dir) and private tmpfs on /run and /tmp. What bootstrap changes on a
 * host (users, sshd drop-ins, nft rules, units, /root/.bashrc, packages) lands in the overlay,
 * never on the machine running the tests. An agent started there binds :8088 as on a VM.
 *
 * The host's init (a shell, PID 1 of its namespace) waits on its stdin: when the test process
 * ends, even by a crash, the pipe closes, the init exits and the kernel ends every process of
 * the host. stopAllTestHosts() (afterAll) stops hosts by PID and deletes namespaces and bridge.
 * Needs root, iproute2, util-linux (unshare, nsenter) and openssh-server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateEd25519 } from '../../cli/ssh/index.js';
import { cloudConfigScript, shq, type AppliedCloudConfig } from './cloud-config-apply.js';
import { dyingWithTest } from './procs.js';
import { addHostNetns, ip, netSlot, releaseNetSlot } from './test-net.js';

export interface TestHostOptions {
  /** Public keys (OpenSSH lines) authorized for root. */
  authorizedKeys?: string[];
  /** The host's ed25519 key pair (OpenSSH format); generated when absent and no user data sets one. */
  hostKey?: { privateKey: string; publicKey: string };
  /** cloud-config user data, applied inside the host before sshd starts. */
  userData?: string;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface TestHost {
  name: string;
  /** The host's address (inside its namespace); sshd on :22, an agent on :8088. */
  address: string;
  port: number;
  /** The machine's address as the host sees it (the controller). */
  controllerAddress: string;
  netns: string;
  /** `ssh-ed25519 AAAA...` the host presents. */
  hostPublicKey: string;
  /** What the user data asked for, when given. */
  applied: AppliedCloudConfig | undefined;
  /** PID (in this machine's PID namespace) of the host's init. */
  initPid: number;
  /** Runs argv inside the host, as root (or `user`), in all its namespaces. */
  exec(argv: string[], opts?: { user?: string; input?: string }): Promise<ExecResult>;
  /** Runs a shell snippet inside the host as root. */
  sh(script: string): Promise<ExecResult>;
  /** sshd's log so far. */
  log(): string;
  stop(): Promise<void>;
}

const live = new Set<TestHost>();
let counter = 1;
const START_TIMEOUT_MS = 90_000;
/** Hosts set up at once: a loaded 2-core machine starts 20 faster a few at a time. */
const START_CONCURRENCY = 4;
let starting = 0;
const waiting: Array<() => void> = [];

async function startSlot(): Promise<() => void> {
  if (starting >= START_CONCURRENCY) await new Promise<void>((r) => waiting.push(r));
  starting++;
  return () => {
    starting--;
    waiting.shift()?.();
  };
}

function mountScript(tmp: string, hostname: string): string {
  return [
    'set -e',
    `T=${shq(tmp)}`,
    'for d in etc home opt var root usr; do',
    '  mkdir -p "$T/upper/$d" "$T/work/$d"',
    '  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$T/upper/$d,workdir=$T/work/$d" "/$d"',
    'done',
    'mount -t tmpfs -o mode=755 tmpfs /run',
    'mount -t tmpfs -o mode=1777 tmpfs /tmp',
    'mkdir -p /run/sshd /run/lock && chmod 755 /run/sshd',
    `hostname ${shq(hostname)}`,
    // As on a VM, the host resolves its own name (sudo looks it up; there is no DNS here).
    `printf '127.0.1.1 %s\n' ${shq(hostname)} >> /etc/hosts`,
    // A fresh VM's root has a plain .bashrc (this machine's runs pyenv init on every command).
    `printf '%s\\n' '# test host' 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' > /root/.bashrc`,
  ].join('\n');
}

function keyScript(opts: TestHostOptions, applied: AppliedCloudConfig | undefined): { script: string; publicKey: string } {
  if (applied?.hostPublicKey) return { script: '', publicKey: applied.hostPublicKey };
  const pair = opts.hostKey ?? generateEd25519();
  const lines = [
    'rm -f /etc/ssh/ssh_host_*',
    `printf '%s\\n' ${shq(pair.privateKey.trim())} > /etc/ssh/ssh_host_ed25519_key && chmod 600 /etc/ssh/ssh_host_ed25519_key`,
    `printf '%s\\n' ${shq(pair.publicKey.trim())} > /etc/ssh/ssh_host_ed25519_key.pub`,
  ];
  return { script: lines.join('\n'), publicKey: pair.publicKey.trim() };
}

function authorizedScript(keys: string[] | undefined): string {
  if (!keys?.length) return '';
  return [
    `install -d -m 700 /root/.ssh`,
    `printf '%s\\n' ${keys.map(shq).join(' ')} >> /root/.ssh/authorized_keys`,
    'chmod 600 /root/.ssh/authorized_keys',
  ].join('\n');
}

/** Printed by the init when sshd exits, with what /etc/ssh held then. */
const SSHD_EXITED = 'gaxx-test-host: sshd exited';
/** PID 1 of the host: sshd in the background (reporting its end), then wait for stdin to close. */
const INIT_TAIL = [`(/usr/sbin/sshd -D -e; echo "${SSHD_EXITED} with $?" >&2; ls -la /etc/ssh >&2) &`, 'read -r _ || true', 'exit 0'].join('\n');

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function collect(child: ChildProcess, input?: string): Promise<ExecResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  // A command that exits before reading its stdin closes the pipe: that is no failure of the exec.
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(input ?? '');
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function waitListening(child: ChildProcess, out: { text: string }): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`test host sshd did not start in ${START_TIMEOUT_MS} ms: ${out.text}`)), START_TIMEOUT_MS);
    const check = () => {
      if (out.text.includes(SSHD_EXITED)) {
        clearTimeout(timer);
        reject(new Error(`test host sshd exited at start: ${out.text}`));
      }
      if (!out.text.includes('Server listening on')) return;
      clearTimeout(timer);
      resolve();
    };
    child.stderr?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`test host init exited with ${code}: ${out.text}`));
    });
    check();
  });
}

/** Starts an isolated sshd host; stop it (or call stopAllTestHosts in afterAll). */
export async function startTestHost(opts: TestHostOptions = {}): Promise<TestHost> {
  const done = await startSlot();
  try {
    return await start(opts);
  } catch (e) {
    // Seen rarely on a heavily loaded machine: sshd finds no host key at its first start.
    // A fresh namespace and overlay once more; a second failure is reported as it is.
    if (!String(e).includes(SSHD_EXITED)) throw e;
    console.error(`test host: retrying once after: ${String(e).slice(0, 2000)}`);
    return await start(opts);
  } finally {
    done();
  }
}

async function start(opts: TestHostOptions): Promise<TestHost> {
  const slot = await netSlot();
  const n = ++counter;
  if (n > 254) throw new Error('at most 253 test hosts per process');
  const { address, setup } = await addHostNetns(slot, n);
  const netns = slot.netnsName(n);
  const name = `host${n}`;
  const tmp = mkdtempSync(join(tmpdir(), slot.hostDirPrefix(n)));
  const applied = opts.userData === undefined ? undefined : cloudConfigScript(opts.userData);
  const keys = keyScript(opts, applied);
  const script = [mountScript(tmp, name), setup, keys.script, authorizedScript(opts.authorizedKeys), applied?.script ?? '', INIT_TAIL].join('\n');
  const unshare = ['unshare', '--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', '--mount-proc', '--uts'];
  // KILL: unshare ignores TERM while it waits; its death kills the host's init (--kill-child).
  const child = spawn(...dyingWithTest('ip', ['netns', 'exec', netns, ...unshare, '/bin/bash', '-c', script], 'KILL'), {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8' },
  });
  const out = { text: '' };
  child.stdout?.on('data', (b: Buffer) => (out.text += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out.text += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const cleanup = async () => {
    await ip('netns', 'del', netns).catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    await waitListening(child, out);
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    await cleanup();
    throw e;
  }
  const initPid = children(child.pid as number)[0];
  if (!initPid) throw new Error('test host init pid not found');
  const exec = (argv: string[], o: { user?: string; input?: string } = {}) => {
    const inner = o.user ? ['runuser', '-u', o.user, '--', ...argv] : argv;
    const c = spawn('nsenter', ['-t', String(initPid), '-m', '-n', '-p', '-u', '--', ...inner], {
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: '/',
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8' },
    });
    return collect(c, o.input);
  };
  const host: TestHost = {
    name,
    address,
    port: 22,
    controllerAddress: slot.gateway,
    netns,
    hostPublicKey: keys.publicKey,
    applied,
    initPid,
    exec,
    sh: (s) => exec(['/bin/bash', '-c', s]),
    log: () => out.text,
    stop: async () => {
      if (!live.delete(host)) return;
      child.stdin?.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
      await cleanup();
    },
  };
  live.add(host);
  return host;
}

/** Stops every host this process started, then frees the network slot (for afterAll). */
export async function stopAllTestHosts(): Promise<void> {
  await Promise.all([...live].map((h) => h.stop()));
  await releaseNetSlot();
}
