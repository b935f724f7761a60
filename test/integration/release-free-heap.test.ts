// After a large sweep (the agent) or a burst of tasks (the launcher), collectGarbage gives what
// glibc's heaps hold free back to the system (releaseFreeHeap, malloc_trim(0) in gaxx-spawn.node):
// glibc returns on its own only what is free at the top of a heap. In a fresh process with the
// agents' allocator settings, ~40 MiB of buffers freed below one still in use stay resident until
// then. Without the native module (GAXX_SPAWN=node) nothing is given back, and nothing breaks.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../../cli/providers/agent-bundle.js';
import { hasCompiler } from '../helpers/bundle.js';

const built = pathToFileURL(resolve(__dirname, '../../dist/agent/observe/collect-garbage.js')).href;
const spawnBuilt = pathToFileURL(resolve(__dirname, '../../dist/agent/exec/task-spawn.js')).href;

// Buffers of 1000 bytes are malloc'd one by one; the last one stays, so the freed ones are not at the heap's top.
const CHILD = `
const { collectGarbage } = await import(${JSON.stringify(built)});
const { spawnMethod } = await import(${JSON.stringify(spawnBuilt)});
const { readFileSync } = await import('node:fs');
const anonMiB = () => Number(/RssAnon:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
let bufs = [];
for (let i = 0; i < 40000; i++) bufs.push(Buffer.allocUnsafeSlow(1000).fill(1));
const pin = Buffer.allocUnsafeSlow(1000).fill(2);
const grown = anonMiB();
bufs = null;
collectGarbage();
const after = anonMiB();
process.stdout.write(JSON.stringify({ grown, after, native: spawnMethod().native, pin: pin[0] }));
`;

function child(env: Record<string, string>): { grown: number; after: number; native: boolean } {
  const r = spawnSync(process.execPath, [...AGENT_NODE_FLAGS, '--input-type=module', '-e', CHILD], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...AGENT_ENV, ...env },
    encoding: 'utf8',
  });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as { grown: number; after: number; native: boolean };
}

describe('collectGarbage gives free heap memory back', () => {
  it.runIf(hasCompiler)('returns what glibc holds free below memory in use, through the native module', () => {
    const r = child({});
    expect(r.native).toBe(true);
    expect(r.grown).toBeGreaterThan(40);
    // The 40,000 buffers (~40 MiB) are no longer resident.
    expect(r.grown - r.after).toBeGreaterThan(25);
  });

  it('keeps them resident without the module (GAXX_SPAWN=node), and still collects', () => {
    const r = child({ GAXX_SPAWN: 'node' });
    expect(r.native).toBe(false);
    expect(r.grown).toBeGreaterThan(40);
    expect(r.grown - r.after).toBeLessThan(15);
  });
});
