// Named work dirs (ExecRequest.workDir) on the built agent (run `npm run build` first). The agent
// checks the path when the request comes; the sandbox is set up later, by the launcher. A task
// that may write a parent of another task's work dir can swap a component for a symlink in
// between, so the sandbox binds the directory the launcher opened by a walk from the data dir
// that follows no symlink (`bwrap --bind-fd`), never the path. The data dir itself and its
// `tasks/` (where every scratch dir and warm sandbox dir is made) are no task's work dir.
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { execCollect, execStarted, exitOf, rawAgentClient, unary, type RawClients } from '../helpers/grpc.js';
import { deepTreeScript } from '../helpers/deep-tree.js';
import { makePki, type Pki } from '../helpers/pki.js';

let dir: string;
let pki: Pki;
let agent: AgentProcess;
let op: RawClients;
let n = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-work-dir-'));
  pki = await makePki(dir);
  agent = await startAgent({ certsDir: pki.agent.dir });
  op = rawAgentClient(agent.address, pki.clients.operator.dir);
});
afterAll(async () => {
  op.close();
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `script` with sh in the named work dir `workDir`. */
const sh = (workDir: string, script: string) => execCollect(op.agent, { taskId: `wd-${++n}`, argv: ['/bin/sh', '-c', script], workDir });

describe('named work dirs', () => {
  it('are never the data area itself nor under its tasks/', async () => {
    const codes: Record<string, string | undefined> = {};
    for (const w of ['.', './', 'tasks', 'tasks/x', './tasks/y']) codes[w] = (await sh(w, 'true')).error?.gaxxCode;
    expect(codes).toEqual({
      '.': 'INVALID_ARGUMENT',
      './': 'INVALID_ARGUMENT',
      tasks: 'PERMISSION_DENIED',
      'tasks/x': 'PERMISSION_DENIED',
      './tasks/y': 'PERMISSION_DENIED',
    });
    // The agent keeps serving, and a work dir under the data area works.
    const ok = await sh('jobs/one', 'pwd');
    expect([exitOf(ok)?.code, ok.stdout]).toEqual([0, `${join(agent.dataDir, 'jobs', 'one')}\n`]);
  });

  it('are bound as the directory the walk opened: a symlink on the path is refused, also one that stays in the data area', async () => {
    const made = await sh('w', `mkdir -p real && echo inside > real/marker && ln -s real link && ln -s '${pki.agent.dir}' out && echo made`);
    expect(made.stdout).toBe('made\n');
    const viaLink = await sh('w/link', 'cat marker');
    expect(viaLink.stdout).toBe('');
    // Refused as the path it is (the task never started), as the agent's check of the request refuses one.
    expect([viaLink.error?.gaxxCode, viaLink.notStarted, exitOf(viaLink)]).toEqual(['PATH_ESCAPE', true, undefined]);
    expect(viaLink.errorDetails).toMatch(/work dir .*w\/link: .*leaves its area/);
    // Out of the data area it is refused when asked, as before.
    expect((await sh('w/out', 'ls')).error?.gaxxCode).toBe('PATH_ESCAPE');
    const real = await sh('w/real', 'cat marker');
    expect([exitOf(real)?.code, real.stdout]).toEqual([0, 'inside\n']);
  });

  it('cannot be turned into the agent’s cert dir by a task racing the start with a symlink', async () => {
    const certsBefore = readdirSync(pki.agent.dir).sort();
    // One task swaps `r/x` between a directory and a symlink to the agent's certificates, as
    // fast as it can, until it is cancelled; tasks with the work dir `r/x` start meanwhile.
    // `x` is a directory for half a millisecond, then a symlink for as long (renames: never
    // missing), over and over: shorter than the way from the agent's check to the sandbox's mounts.
    const flip = [
      `const fs = require('fs'); const pause = new Int32Array(new SharedArrayBuffer(4));`,
      `fs.mkdirSync('d'); fs.symlinkSync(${JSON.stringify(pki.agent.dir)}, 'l'); console.log('flipping');`,
      `for (;;) { fs.renameSync('d', 'x'); Atomics.wait(pause, 0, 0, 0.5); fs.renameSync('x', 'd');`,
      `fs.renameSync('l', 'x'); Atomics.wait(pause, 0, 0, 0.5); fs.renameSync('x', 'l'); }`,
    ].join('\n');
    const flipper = await execStarted(op.agent, { taskId: 'flipper', argv: [process.execPath, '-e', flip], workDir: 'r', timeoutMs: 120_000 }, 180_000);
    const seen: string[] = [];
    let ran = 0;
    for (let i = 0; i < 200; i++) {
      // Writing nothing: an empty directory is one the flipper can remove again.
      const v = await sh('r/x', 'ls -a; cat key.pem 2>/dev/null; true');
      seen.push(v.stdout);
      if (exitOf(v)?.code === 0) ran++;
    }
    await unary(op.agent.Cancel.bind(op.agent), { taskId: 'flipper' });
    await flipper.result;
    expect(seen.filter((s) => /key\.pem|cert\.pem|PRIVATE KEY/.test(s))).toEqual([]);
    expect(readdirSync(pki.agent.dir).sort()).toEqual(certsBefore);
    // Not all refused: the race was run, some tasks got the real directory.
    expect(ran).toBeGreaterThan(0);
  });

  it('are refused, with the remedy, where bwrap is too old to bind by descriptor; scratch dirs still work', async () => {
    // bwrap as 0.6 had it: the same program, without --bind-fd and --size in its help.
    const old = join(dir, 'bwrap-0.6');
    writeFileSync(old, `#!/bin/sh\nif [ "$1" = --help ]; then /usr/bin/bwrap --help | grep -v -e --bind-fd -e --size; exit 0; fi\nexec /usr/bin/bwrap "$@"\n`);
    chmodSync(old, 0o755);
    const a = await startAgent({ certsDir: pki.agent.dir, args: ['--bwrap', old] });
    const c = rawAgentClient(a.address, pki.clients.operator.dir);
    try {
      const named = await execCollect(c.agent, { taskId: 'old-named', argv: ['true'], workDir: 'jobs' });
      expect(named.error?.gaxxCode).toBe('FAILED_PRECONDITION');
      const scratch = await execCollect(c.agent, { taskId: 'old-scratch', argv: ['/bin/sh', '-c', 'pwd; ls /'] });
      expect(exitOf(scratch)?.code).toBe(0);
      expect(scratch.stdout.split('\n')[0]).toBe(join(a.dataDir, 'tasks', '+task'));
    } finally {
      c.close();
      await a.stop();
    }
  });

  it('a scratch dir a task filled with a 3,000-deep tree is removed once the task is forgotten, and the agent serves on', async () => {
    const a = await startAgent({ certsDir: pki.agent.dir, args: ['--task-retention', '1s'] });
    const c = rawAgentClient(a.address, pki.clients.operator.dir);
    try {
      const deep = await execCollect(c.agent, { taskId: 'deep', argv: ['/bin/sh', '-c', `${deepTreeScript(3000)} && echo built`] }, undefined, 120_000);
      expect(deep.stdout).toBe('built\n');
      const scratch = join(a.dataDir, 'tasks', 'deep');
      expect(existsSync(scratch)).toBe(true);
      // Forgotten a second after its end, when a later task ends; its dir goes off the event loop.
      let m = 0;
      await vi.waitFor(
        async () => {
          expect(exitOf(await execCollect(c.agent, { taskId: `after-${++m}`, argv: ['true'] }))?.code).toBe(0);
          expect(existsSync(scratch)).toBe(false);
        },
        { timeout: 30_000, interval: 250 },
      );
    } finally {
      c.close();
      await a.stop();
    }
  });
});
