// File RPCs open what they checked (the built agent, run `npm run build` first): a task flipping
// a directory in its work dir between a real dir and a symlink to a secret outside the data dir
// while GetFile reads through it never leaks the secret; a file hard-linked from outside the data
// dir is refused with PATH_ESCAPE; good reads keep working.
import { chownSync, linkSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_GID, AGENT_UID } from '../helpers/agent.js';
import { useAgentWorld } from '../helpers/agent-world.js';
import { execCollect, exitOf, getFile, unary } from '../helpers/grpc.js';

const SECRET = 'outside-secret-must-not-leak';
let outside: string;
const w = useAgentWorld('gaxx-files-race', ({ dir }) => {
  outside = join(dir, 'outside');
  mkdirSync(outside, { mode: 0o755 });
  writeFileSync(join(outside, 'f'), SECRET, { mode: 0o644 });
  return {};
});

describe('GetFile against a task flipping a directory to a symlink', () => {
  it('never returns what lies outside the data dir', async () => {
    const taskId = 'flipper';
    // The agent follows links on the host, so the symlink names the host path of the secret.
    const script = `mkdir real; echo inside > real/f; echo ready
      i=0; while [ $i -lt 20000 ] && [ ! -e stop ]; do
        ln -sfn '${outside}' d; rm -f d; ln -sfn real d; rm -f d; mkdir -p d; echo inside > d/f; rm -rf d; i=$((i+1))
      done`;
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const flipping = execCollect(w.op.agent, { taskId, argv: ['/bin/sh', '-c', script], timeoutMs: 120_000 }, (ev) => {
      if (ev.stdout?.toString().includes('ready')) ready();
    });
    await isReady;
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const r = await getFile(w.op.agent, `tasks/${taskId}/d/f`);
      const key = r.ok ? `ok:${r.value.data.toString().trim()}` : String(r.gaxxCode);
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    writeFileSync(join(w.agent.dataDir, 'tasks', taskId, 'stop'), '');
    expect(exitOf(await flipping)?.code).toBe(0);
    expect([...outcomes.keys()].some((k) => k.includes(SECRET))).toBe(false);
    // Inside content (or the moment it is empty, between truncate and write), a refusal, a miss,
    // or a file that changed while it was sent: never anything else.
    const allowed = ['ok:inside', 'ok:', 'PATH_ESCAPE', 'NOT_FOUND', 'CHECKSUM_MISMATCH'];
    expect(
      [...outcomes.keys()].filter((k) => !allowed.includes(k)),
      JSON.stringify([...outcomes]),
    ).toEqual([]);
    // The symlink was seen (and refused) while flipping, not only the real dir.
    expect(outcomes.get('PATH_ESCAPE') ?? 0).toBeGreaterThan(0);
    const good = await getFile(w.op.agent, `tasks/${taskId}/real/f`);
    expect(good.ok && good.value.data.toString()).toBe('inside\n');
  });
});

describe('a hard link to a file outside the data dir', () => {
  it('is refused with PATH_ESCAPE; the agent keeps serving', async () => {
    const link = join(w.agent.dataDir, 'linked');
    linkSync(join(outside, 'f'), link);
    if (process.getuid?.() === 0) chownSync(link, AGENT_UID, AGENT_GID);
    const r = await getFile(w.op.agent, 'linked');
    expect(r.ok ? 'ok' : r.gaxxCode).toBe('PATH_ESCAPE');
    writeFileSync(join(w.agent.dataDir, 'plain'), 'plain data');
    const good = await getFile(w.op.agent, 'plain');
    expect(good.ok && good.value.data.toString()).toBe('plain data');
    expect((await unary(w.op.agent.Info.bind(w.op.agent), {})).ok).toBe(true);
  });
});
