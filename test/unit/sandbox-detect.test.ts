// The agent's sandbox check (agent/exec/sandbox.ts): which of the newer options tasks are started
// with this bwrap has (--bind-fd 0.8, --size 0.7). An older one still isolates tasks, and says
// what it lacks; the agent then binds scratch dirs only and refuses named work dirs (a named one
// bound by path could be redirected by another task), and leaves /tmp at the kernel's default.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { detectSandbox, sandboxMounts } from '../../agent/exec/sandbox.js';

const dir = mkdtempSync(join(tmpdir(), 'gaxx-sandbox-detect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in bwrap whose --help lists `options` and that runs anything else as a success (the namespace probe). */
function fakeBwrap(name: string, options: string[]): string {
  const file = join(dir, name);
  const help = ['usage: bwrap [OPTIONS...] [--] COMMAND [ARGS...]', ...options.map((o) => `    ${o} ARG    what it does`)].join('\n');
  writeFileSync(file, `#!/bin/sh\nif [ "$1" = --help ]; then cat <<'EOF'\n${help}\nEOF\nfi\nexit 0\n`);
  chmodSync(file, 0o755);
  return file;
}

const paths = { certsDir: '/nonexistent/c', auditDir: '/nonexistent/a', stateDir: '/nonexistent/s', tmpBytes: 1024 };

describe('detectSandbox', () => {
  it('finds what an older bwrap lacks and says so', async () => {
    const old = await detectSandbox(fakeBwrap('bwrap-0.6', ['--bind', '--tmpfs', '--args']));
    expect(old).toMatchObject({ kind: 'bwrap', bindFd: false, tmpSize: false });
    expect(old.detail).toMatch(/older than 0\.8, no --bind-fd: named work dirs refused; no --size: \/tmp and \/dev\/shm not held to the memory limit\)$/);
    if (old.kind === 'bwrap') expect(sandboxMounts(old, paths).before.join(' ')).toMatch(/--proc \/proc --tmpfs \/tmp$/);
    const half = await detectSandbox(fakeBwrap('bwrap-0.7', ['--bind', '--size', '--tmpfs']));
    expect(half).toMatchObject({ kind: 'bwrap', bindFd: false, tmpSize: true });
    if (half.kind === 'bwrap') expect(sandboxMounts(half, paths).before.join(' ')).toMatch(/--size 1024 --tmpfs \/tmp$/);
  });

  it('finds the system bwrap with both, and usable', async () => {
    const s = await detectSandbox();
    expect(s).toMatchObject({ kind: 'bwrap', bindFd: true, tmpSize: true });
    expect(s.detail).not.toMatch(/older/);
  });
});
