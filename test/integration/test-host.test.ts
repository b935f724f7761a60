/**
 * The isolated sshd test hosts themselves: what a host writes stays in its overlay, its address
 * is reachable only through the namespaces made here, cloud-config user data is applied before
 * sshd starts, and stopping a host leaves no namespace or process behind.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/agent.js';
import { startTestHost, stopAllTestHosts, type TestHost } from '../helpers/test-host.js';
import { sweepStaleSlots } from '../helpers/test-net.js';
import { generateEd25519 } from '../../cli/ssh/index.js';

const run = promisify(execFile);

async function keyscan(address: string): Promise<string> {
  const { stdout } = await run('ssh-keyscan', ['-T', '10', '-t', 'ed25519', address]);
  return stdout.split('\n').find((l) => l.startsWith(address)) ?? '';
}

describe('isolated test hosts', () => {
  let host: TestHost;
  const probe = `/etc/gaxx-isolation-probe-${process.pid}`;

  beforeAll(async () => {
    host = await startTestHost();
  });
  afterAll(async () => {
    await stopAllTestHosts();
  });

  it('keeps a file written under /etc inside the host', async () => {
    const w = await host.sh(`echo inside > ${probe} && cat ${probe}`);
    expect(w.code).toBe(0);
    expect(w.stdout.trim()).toBe('inside');
    expect(existsSync(probe)).toBe(false);
  });

  it('gives root a plain .bashrc without touching the machine one', async () => {
    const r = await host.sh('cat /root/.bashrc');
    expect(r.stdout).not.toContain('pyenv');
    expect(r.stdout).toContain('# test host');
  });

  it('has an address that exists only through its namespace', async () => {
    const { stdout: machineAddrs } = await run('ip', ['-o', 'addr']);
    expect(machineAddrs).not.toContain(` ${host.address}/`);
    expect(await keyscan(host.address)).toContain('ssh-ed25519');
    // A namespace without our bridge has no route to the host.
    const alone = await run('unshare', ['--net', 'ip', 'route', 'get', host.address]).then(
      () => 'routed',
      () => 'unreachable',
    );
    expect(alone).toBe('unreachable');
  });

  it('presents its own host key, not the machine one', async () => {
    const scanned = await keyscan(host.address);
    expect(scanned.split(' ').slice(1, 3).join(' ')).toBe(host.hostPublicKey.split(' ').slice(0, 2).join(' '));
    const machine = existsSync('/etc/ssh/ssh_host_ed25519_key.pub') ? (await run('cat', ['/etc/ssh/ssh_host_ed25519_key.pub'])).stdout : '';
    expect(machine.split(' ')[1]).not.toBe(host.hostPublicKey.split(' ')[1]);
  });
});

describe('cloud-config user data', () => {
  afterAll(async () => {
    await stopAllTestHosts();
  });

  it('applies users, host keys, write_files and runcmd before sshd starts, and records power_state', async () => {
    const hostKey = generateEd25519();
    const user = generateEd25519();
    const userData = [
      '#cloud-config',
      'users:',
      '  - name: gx',
      '    shell: /bin/bash',
      '    lock_passwd: true',
      `    ssh_authorized_keys: [${JSON.stringify(user.publicKey.trim())}]`,
      'ssh_deletekeys: true',
      'ssh_keys:',
      '  ed25519_private: |',
      ...hostKey.privateKey
        .trim()
        .split('\n')
        .map((l) => `    ${l}`),
      `  ed25519_public: ${JSON.stringify(hostKey.publicKey.trim())}`,
      'write_files:',
      '  - path: /etc/gaxx-probe.conf',
      '    content: "hello\\n"',
      "    permissions: '0640'",
      'runcmd:',
      '  - [sh, -c, "echo ran > /var/tmp/runcmd-probe"]',
      'power_state:',
      '  mode: poweroff',
      '  delay: "+90"',
      '',
    ].join('\n');
    const host = await startTestHost({ userData });
    expect((await host.sh('id -un gx && passwd -S gx | cut -d" " -f2')).stdout.split('\n').slice(0, 2)).toEqual(['gx', 'L']);
    expect((await host.sh('cat /home/gx/.ssh/authorized_keys')).stdout.trim()).toBe(user.publicKey.trim());
    expect((await host.sh('stat -c %a /etc/gaxx-probe.conf && cat /etc/gaxx-probe.conf /var/tmp/runcmd-probe')).stdout).toBe('640\nhello\nran\n');
    expect(host.hostPublicKey).toBe(hostKey.publicKey.trim());
    expect((await keyscan(host.address)).split(' ')[2]).toBe(hostKey.publicKey.trim().split(' ')[1]);
    expect(host.applied?.powerState).toEqual({ mode: 'poweroff', delay: '+90' });
    expect(existsSync('/etc/gaxx-probe.conf')).toBe(false);
  });

  it('leaves no namespace or process behind after stop', async () => {
    const host = await startTestHost();
    await host.stop();
    const { stdout } = await run('ip', ['netns', 'list']);
    expect(stdout.split('\n').map((l) => l.split(' ')[0])).not.toContain(host.netns);
    expect(existsSync(`/proc/${host.initPid}`)).toBe(false);
  });
});

describe('a crashed test run', () => {
  it('leaves nothing that outlives the next sweep: its host ends with it, its namespace and slot are cleared', async () => {
    // A separate process starts a host and is killed without any cleanup.
    const script = [
      `import { startTestHost } from ${JSON.stringify(join(repoRoot(), 'dist', 'test', 'helpers', 'test-host.js'))};`,
      'const h = await startTestHost();',
      'console.log(JSON.stringify({ netns: h.netns, initPid: h.initPid }));',
      'setInterval(() => {}, 1000);',
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0] as string);
      });
      child.once('exit', (code) => reject(new Error(`child exited with ${code} before starting a host`)));
    });
    const { netns, initPid } = JSON.parse(line) as { netns: string; initPid: number };
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
    // The host's init sees its stdin close and ends; the kernel ends the rest of the host.
    for (let i = 0; i < 200 && existsSync(`/proc/${initPid}`); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(`/proc/${initPid}`)).toBe(false);
    expect((await run('ip', ['netns', 'list'])).stdout).toContain(netns);
    // Its temp dir (the overlay's upper and work dirs) is still there: named by slot and host number.
    const [, slot, n] = /^gaxx-th(\d+)-(\d+)$/.exec(netns) ?? [];
    const leftDirs = (): string[] => readdirSync(tmpdir()).filter((f) => f.startsWith(`gxh-s${slot}-${n}-`));
    const left = leftDirs();
    expect(left).toHaveLength(1);
    // (A test process running beside this one may sweep it first: either way it goes.)
    await sweepStaleSlots();
    expect((await run('ip', ['netns', 'list'])).stdout).not.toContain(netns);
    // The sweep takes the dir too (a process that claims the slot since makes dirs of new names).
    expect(leftDirs().filter((d) => left.includes(d))).toEqual([]);
    // And the next host starts as usual.
    const next = await startTestHost();
    expect((await next.sh('echo ok')).stdout).toBe('ok\n');
    await stopAllTestHosts();
  });
});
