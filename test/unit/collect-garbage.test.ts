// The agent's collection after a large expiry sweep (agent/observe/collect-garbage.ts) gives the
// freed memory back to the system, not only to V8's free lists: in a fresh process started with
// the agents' Node flags, a heap grown to tens of MiB and then dropped (save a scattered few
// objects that stay, as the agent's own do among its tasks') is left committing little more than
// what is still used. One full collection alone left ~50 MiB committed of such a heap.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AGENT_NODE_FLAGS } from '../../cli/providers/agent-bundle.js';
import { repoRoot } from '../helpers/agent.js';

const MiB = 1024 * 1024;
const built = pathToFileURL(join(repoRoot(), 'dist', 'agent', 'observe', 'collect-garbage.js')).href;

const CHILD = `
const { collectGarbage } = await import(${JSON.stringify(built)});
const v8 = await import('node:v8');
let dropped = new Map();
const kept = [];
for (let i = 0; i < 200000; i++) {
  dropped.set('k' + i, { a: i, b: 'x'.repeat(20) + i, c: [i, i + 1] });
  if (i % 50 === 0) kept.push({ s: 'y' + i });
}
const grown = v8.getHeapStatistics().total_heap_size;
dropped = null;
collectGarbage();
const s = v8.getHeapStatistics();
process.stdout.write(JSON.stringify({ grown, total: s.total_heap_size, used: s.used_heap_size, kept: kept.length }));
`;

describe('collectGarbage', () => {
  it('leaves a heap that grew and was dropped committing little more than it still uses', () => {
    const r = spawnSync(process.execPath, [...AGENT_NODE_FLAGS, '--input-type=module', '-e', CHILD], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    const m = JSON.parse(r.stdout) as { grown: number; total: number; used: number; kept: number };
    expect(m.kept).toBe(4000);
    expect(m.grown).toBeGreaterThan(60 * MiB);
    expect(m.used).toBeLessThan(10 * MiB);
    expect(m.total).toBeLessThan(m.used + 16 * MiB);
  });
});
