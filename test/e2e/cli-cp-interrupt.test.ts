// `gaxx cp` stopped part-way (Ctrl-C, SIGTERM): the built CLI against stand-in agents that hold a
// transfer in the middle for as long as the test needs, and a real agent it never got to.
import { readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { cliWorld, homeAgentCerts, type CliWorld } from '../helpers/cli-world.js';
import { startStandInAgent } from '../helpers/stand-in-agent.js';

let w: CliWorld;
let tmp: string;

beforeAll(async () => {
  w = await cliWorld(1);
  tmp = w.scratch('gxi-');
});

afterAll(async () => {
  await w?.close();
});

type Row = { host: string; ok: boolean; path: string; error?: { code: string; message: string } };

/** Every file under `dir` (its folders walked), by its path under `dir`. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) => !statSync(join(dir, p)).isDirectory());
}

const realAgent = (): string => (w.agents[0] as { address: string }).address;

describe('gaxx cp interrupted', () => {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`${sig} mid-download: the temp file is removed, each host is reported CANCELLED (--json), a host not begun is never begun, exit 130`, async () => {
      const standIn = await startStandInAgent(await homeAgentCerts(w.home, 'adhoc', `get-${sig}`), '127.0.0.1', {
        getFile: { announce: 1024 * 1024, send: 256 * 1024, hold: true },
      });
      try {
        const dir = join(tmp, `down-${sig}`);
        writeFileSync(join(tmp, 'seed'), 'from the real agent\n');
        expect((await w.gaxx(['cp', '--agent', realAgent(), join(tmp, 'seed'), ':held.bin'])).code).toBe(0);
        // One host at a time: the real agent's turn comes only after the stand-in's, which never ends.
        const cp = w.spawnGaxx(['cp', '--json', '--parallel', '1', '--agent', `${standIn.address},${realAgent()}`, ':held.bin', dir]);
        await standIn.getFileHeld;
        // The temp file is made before the call: the download is now part-way.
        expect(filesUnder(dir)).toEqual([expect.stringMatching(/^127\.0\.0\.1:\d+\/\.[0-9a-f]+\.tmp$/)]);
        cp.kill(sig);
        const end = await cp.done;
        expect(end.code, end.stderr).toBe(exitCodeFor('CANCELLED'));
        expect(end.stderr).toContain('stopping the copies');
        const rows = JSON.parse(end.stdout) as Row[];
        expect(rows.map((r) => [r.host, r.ok, r.error?.code])).toEqual([
          [standIn.address, false, 'CANCELLED'],
          [realAgent(), false, 'CANCELLED'],
        ]);
        expect(rows[1]?.error?.message).toMatch(/before this host was started/);
        // Nor the host folders this download made.
        expect(readdirSync(dir)).toEqual([]);
        // The stand-in's call was ended by the client, not left to the process's exit.
        expect(await standIn.getFileEnded).toBe(256 * 1024);
      } finally {
        await standIn.close();
      }
    });
  }

  it('an agent that goes away mid-download is UNAVAILABLE (exit 12), said to have stopped: not an interrupt (130)', async () => {
    const standIn = await startStandInAgent(await homeAgentCerts(w.home, 'adhoc', 'get-gone'), '127.0.0.1', {
      getFile: { announce: 1024 * 1024, send: 256 * 1024, hold: true },
    });
    const dir = join(tmp, 'down-gone');
    const cp = w.spawnGaxx(['cp', '--json', '--agent', standIn.address, ':held.bin', dir]);
    await standIn.getFileHeld;
    standIn.kill();
    const end = await cp.done;
    expect(end.code, end.stderr + end.stdout).toBe(exitCodeFor('UNAVAILABLE'));
    const rows = JSON.parse(end.stdout) as Row[];
    expect(rows.map((r) => [r.host, r.ok, r.error?.code])).toEqual([[standIn.address, false, 'UNAVAILABLE']]);
    expect(rows[0]?.error?.message).toMatch(/the agent stopped or restarted/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('SIGINT mid-upload: the call is cancelled (the agent keeps its file as it was), CANCELLED in --json, exit 130', async () => {
    const standIn = await startStandInAgent(await homeAgentCerts(w.home, 'adhoc', 'put-held'), '127.0.0.1', { putFile: { hold: true } });
    try {
      const file = join(tmp, 'up.bin');
      writeFileSync(file, '');
      // Far more than the stream's flow-control window: the upload waits on the stand-in.
      truncateSync(file, 64 * 1024 * 1024);
      const cp = w.spawnGaxx(['cp', '--json', '--agent', standIn.address, file, ':up.bin']);
      await standIn.putFileHeld;
      cp.kill('SIGINT');
      const end = await cp.done;
      expect(end.code, end.stderr).toBe(exitCodeFor('CANCELLED'));
      const rows = JSON.parse(end.stdout) as Row[];
      expect(rows.map((r) => [r.host, r.ok, r.error?.code])).toEqual([[standIn.address, false, 'CANCELLED']]);
      expect(await standIn.putFileEnded).toBe('cancelled');
    } finally {
      await standIn.close();
    }
  });
});
