#!/usr/bin/env node
// Builds gaxx-spawn.node (agent/exec/native/gaxx-spawn.c), the task launcher's vfork spawn, with
// the system's C compiler ($CC, else cc) against the running Node's headers, into
// dist/bundle/ (beside gaxx-launcher.mjs: installed and uploaded with the agent) and
// dist/agent/exec/ (beside launcher-main.js of the tsc build).
// It is optional: without a compiler, or without Node's or libc's headers, the build goes on and
// the launcher spawns through child_process and prlimit (slower: see the .c file), and this says what to
// install. A compiler that fails on the source, with everything there, fails the build.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'agent', 'exec', 'native', 'gaxx-spawn.c');
const outputs = [join(root, 'dist', 'bundle', 'gaxx-spawn.node'), join(root, 'dist', 'agent', 'exec', 'gaxx-spawn.node')];
for (const o of outputs) rmSync(o, { force: true });

const skip = (why) => {
  console.warn(
    `build-native: ${why}; tasks will be spawned through Node's child_process (slower). Install a C compiler and libc headers (Debian/Ubuntu: apt-get install gcc libc6-dev) and rebuild for the faster spawn.`,
  );
  process.exit(0);
};

if (process.platform !== 'linux') skip(`the vfork spawn with pidfds is built for Linux only (this is ${process.platform})`);
const cc = process.env.CC || 'cc';
if (spawnSync(cc, ['--version'], { stdio: 'ignore' }).status !== 0) skip(`no C compiler (${cc})`);
// Node's headers: beside the node binary (<prefix>/include/node), as Debian's and the official builds install them.
const include = [join(dirname(dirname(process.execPath)), 'include', 'node'), '/usr/include/node', '/usr/local/include/node'].find((d) =>
  existsSync(join(d, 'node_api.h')),
);
if (!include) skip('no Node headers (node_api.h) beside this Node');
const libc = spawnSync(cc, ['-x', 'c', '-E', '-'], { input: '#include <sys/resource.h>\n', stdio: ['pipe', 'ignore', 'ignore'] });
if (libc.status !== 0) skip('no libc headers (sys/resource.h)');

mkdirSync(dirname(outputs[0]), { recursive: true });
const built = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', '-shared', '-fPIC', `-I${include}`, '-o', outputs[0], source], { encoding: 'utf8' });
if (built.status !== 0) {
  console.error(`build-native: ${cc} failed on ${source}:\n${built.stderr}`);
  process.exit(1);
}
for (const o of outputs.slice(1)) {
  mkdirSync(dirname(o), { recursive: true });
  copyFileSync(outputs[0], o);
}
