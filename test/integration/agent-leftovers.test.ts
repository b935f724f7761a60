// What an agent killed mid-write leaves behind is removed when it starts again: the part of an
// upload (up to 1 GiB), cert-area stage dirs and atomic-write temp files; files of the same kind
// of name that are not the agent's stay.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, stopAllAgents } from '../helpers/agent.js';
import { putFile, rawAgentClient } from '../helpers/grpc.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { eventually } from '../helpers/poll.js';

let dir: string;
let pki: Pki;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-agent-leftovers-'));
  pki = await makePki(dir);
});
afterAll(async () => {
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

/** Every path under `root` (relative), files and dirs. */
function tree(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    out.push(p);
    if (e.isDirectory()) out.push(...tree(root, p));
  }
  return out;
}

const isPart = (p: string) => /(^|\/)(\+put-[^/]*|\.[0-9a-f]{12}\.part)$/.test(p);

describe('an agent killed mid-write', () => {
  it('leaves no part of an upload once it runs again; what is not its own stays', async () => {
    const dataDir = join(dir, 'data');
    const first = await startAgent({ certsDir: pki.agent.dir, dataDir, metrics: false });
    const stateDir = `${dataDir}-state`;
    const op = rawAgentClient(first.address, pki.clients.operator.dir);
    // An upload of 4 MiB of which 1 MiB is sent, then nothing: the agent holds its part.
    const call = op.agent.PutFile(() => undefined);
    call.on('error', () => undefined);
    const data = Buffer.alloc(4 * 1024 * 1024, 'x');
    call.write({
      header: { path: 'in/big.bin', mode: 0o644, size: data.length, sha256: createHash('sha256').update(data).digest('hex'), area: 'FILE_AREA_DATA' },
    });
    for (let i = 0; i < 1024 * 1024; i += 64 * 1024) call.write({ data: data.subarray(i, i + 64 * 1024) });
    expect(await eventually(() => tree(dataDir).some(isPart), 30_000), tree(dataDir).join(' ')).toBe(true);
    first.kill('SIGKILL');
    await first.exited;
    (call as grpc.ClientWritableStream<unknown>).cancel();
    op.close();
    expect(tree(dataDir).filter(isPart)).toHaveLength(1);
    // Stage dirs and temp files as a kill mid-push or mid-journal-write leaves them, and files
    // of the user's that only look alike.
    mkdirSync(join(stateDir, 'stage-0123456789ab'));
    writeFileSync(join(stateDir, 'stage-0123456789ab', 'key.pem'), 'k');
    writeFileSync(join(stateDir, '.0123456789ab.tmp'), 't');
    mkdirSync(join(dataDir, 'mine'), { recursive: true });
    for (const f of ['.0123456789ab.tmp', 'stage-1', '+put-x']) writeFileSync(join(dataDir, 'mine', f), 'keep');

    const second = await startAgent({ certsDir: pki.agent.dir, dataDir, metrics: false });
    expect(tree(dataDir).filter(isPart)).toEqual(['mine/+put-x']);
    expect(readdirSync(stateDir).filter((n) => n.startsWith('stage-') || n.endsWith('.tmp'))).toEqual([]);
    expect(readdirSync(join(dataDir, 'mine')).sort()).toEqual(['+put-x', '.0123456789ab.tmp', 'stage-1']);
    expect(second.stderr()).toContain('left mid-write');
    // The same upload, whole, lands where it was meant to, and leaves nothing beside it.
    const op2 = rawAgentClient(second.address, pki.clients.operator.dir);
    try {
      const put = await putFile(op2.agent, { path: 'in/big.bin', mode: 0o644 }, data);
      expect(put.ok && put.value.size).toBe(data.length);
      expect(statSync(join(dataDir, 'in', 'big.bin')).size).toBe(data.length);
      expect(tree(dataDir).filter(isPart)).toEqual(['mine/+put-x']);
      expect(readdirSync(join(dataDir, 'in'))).toEqual(['big.bin']);
    } finally {
      op2.close();
    }
  });
});
