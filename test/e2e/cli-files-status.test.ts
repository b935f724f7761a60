// `gaxx cp` both ways and `gaxx status`: the built CLI against real agents of a registered fleet.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, createReadStream, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor, MAX_FILE_BYTES } from '../../proto/index.js';
import { repoRoot } from '../helpers/agent.js';
import { runGaxx } from '../helpers/cli.js';
import { cliWorld, homeAgentCerts, type CliWorld } from '../helpers/cli-world.js';
import { startStandInAgent } from '../helpers/stand-in-agent.js';
import { TcpRelay } from '../helpers/tcp-relay.js';

let w: CliWorld;
let tmp: string;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  w = await cliWorld(3);
  tmp = w.scratch('gxf-');
});

afterAll(async () => {
  await w?.close();
});

type Row = { host: string; ok: boolean; sha256: string; path: string; error?: { code: string } };

describe('gaxx cp', () => {
  it('out to 3 agents and back: identical sha256 per host, each host in its own folder', async () => {
    const data = randomBytes(300_000);
    const file = join(tmp, 'blob.bin');
    writeFileSync(file, data);
    const up = await w.gaxx(['cp', '--json', file, `${w.fleet}:in/blob.bin`]);
    expect(up.code, up.stderr).toBe(0);
    const upRows = JSON.parse(up.stdout) as Row[];
    expect(upRows.map((r) => [r.host, r.ok, r.sha256])).toEqual(w.hosts.map((h) => [h, true, sha(data)]));
    const dir = join(tmp, 'back');
    const down = await w.gaxx(['cp', '--json', `${w.fleet}:in/blob.bin`, dir]);
    expect(down.code, down.stderr).toBe(0);
    for (const h of w.hosts) expect(sha(readFileSync(join(dir, h, 'blob.bin')))).toBe(sha(data));
  });

  it("one host's file never overwrites another's: --host uploads differ, downloads keep each", async () => {
    for (const h of w.hosts) {
      writeFileSync(join(tmp, `own-${h}`), `I am ${h}\n`);
      const r = await w.gaxx(['cp', '--host', h, join(tmp, `own-${h}`), `${w.fleet}:own.txt`]);
      expect(r.code, r.stderr).toBe(0);
    }
    const dir = join(tmp, 'own');
    expect((await w.gaxx(['cp', `${w.fleet}:own.txt`, dir])).code).toBe(0);
    for (const h of w.hosts) expect(readFileSync(join(dir, h, 'own.txt'), 'utf8')).toBe(`I am ${h}\n`);
  });

  it('refuses a path escaping the data dir (PATH_ESCAPE), an unknown fleet (NOT_FOUND), two local sides (USAGE); a good copy still works', async () => {
    const file = join(tmp, 'small');
    writeFileSync(file, 'x');
    const esc = await w.gaxx(['cp', '--json', file, `${w.fleet}:../escape`]);
    expect(esc.code).toBe(exitCodeFor('PATH_ESCAPE'));
    expect((JSON.parse(esc.stdout) as Row[]).every((r) => !r.ok && r.error?.code === 'PATH_ESCAPE')).toBe(true);
    expect((await w.gaxx(['cp', file, 'nofleet:x'])).code).toBe(exitCodeFor('NOT_FOUND'));
    expect((await w.gaxx(['cp', file, join(tmp, 'other')])).code).toBe(exitCodeFor('USAGE'));
    const agent = (w.agents[0] as { address: string }).address;
    const ok = await w.gaxx(['cp', '--agent', agent, file, ':small']);
    expect(ok.code, ok.stderr).toBe(0);
  });
});

describe('gaxx cp: ordinary mistakes are refused clearly, never INTERNAL', () => {
  it('REMOTE ending in / copies into that directory under the local name; an existing directory as REMOTE is INVALID_ARGUMENT', async () => {
    const file = join(tmp, 'note.txt');
    writeFileSync(file, 'hello\n');
    const into = await w.gaxx(['cp', '--json', file, `${w.fleet}:inbox/`]);
    expect(into.code, into.stderr).toBe(0);
    expect((JSON.parse(into.stdout) as Row[]).map((r) => r.path)).toEqual(w.hosts.map(() => 'inbox/note.txt'));
    const onDir = await w.gaxx(['cp', '--json', file, `${w.fleet}:inbox`]);
    expect(onDir.code).toBe(exitCodeFor('INVALID_ARGUMENT'));
    expect((JSON.parse(onDir.stdout) as Row[]).map((r) => r.error?.code)).toEqual(w.hosts.map(() => 'INVALID_ARGUMENT'));
  });

  it('a download into an existing file is USAGE up front and leaves the file alone; into a folder it overwrites what is there', async () => {
    const file = join(tmp, 'note.txt');
    writeFileSync(file, 'hello\n');
    expect((await w.gaxx(['cp', file, `${w.fleet}:back.txt`])).code).toBe(0);
    const existing = join(tmp, 'existing.bin');
    writeFileSync(existing, 'keep');
    const r = await w.gaxx(['cp', '--json', `${w.fleet}:back.txt`, existing]);
    expect(r.code, r.stderr).toBe(exitCodeFor('USAGE'));
    expect(readFileSync(existing, 'utf8')).toBe('keep');
    const dir = join(tmp, 'twice');
    for (let i = 0; i < 2; i++) expect((await w.gaxx(['cp', `${w.fleet}:back.txt`, dir])).code).toBe(0);
    for (const h of w.hosts) expect(readFileSync(join(dir, h, 'back.txt'), 'utf8')).toBe('hello\n');
  });
});

describe('gaxx cp: a failed download leaves nothing in LOCALDIR', () => {
  it('a missing remote file, or an agent that does not answer: no host folder made for it stays; one that was there stays, with its files', async () => {
    const dir = join(tmp, 'failed');
    const r = await w.gaxx(['cp', '--json', `${w.fleet}:no/such/file`, dir]);
    expect(r.code, r.stderr).toBe(exitCodeFor('NOT_FOUND'));
    expect((JSON.parse(r.stdout) as Row[]).map((x) => x.error?.code)).toEqual(w.hosts.map(() => 'NOT_FOUND'));
    expect(readdirSync(dir)).toEqual([]);
    const gone = await w.gaxx(['cp', '--json', '--agent', '127.0.0.1:1', ':x', dir]);
    expect(gone.code, gone.stderr).toBe(exitCodeFor('UNAVAILABLE'));
    expect(readdirSync(dir)).toEqual([]);
    // A host folder from an earlier download is the user's: kept, with what it holds.
    const file = join(tmp, 'kept.txt');
    writeFileSync(file, 'kept\n');
    expect((await w.gaxx(['cp', file, `${w.fleet}:kept.txt`])).code).toBe(0);
    expect((await w.gaxx(['cp', `${w.fleet}:kept.txt`, dir])).code).toBe(0);
    expect((await w.gaxx(['cp', `${w.fleet}:no/such/file`, dir])).code).toBe(exitCodeFor('NOT_FOUND'));
    for (const h of w.hosts) expect(readdirSync(join(dir, h))).toEqual(['kept.txt']);
  });
});

const fileSha = async (file: string): Promise<string> => {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
};

describe('gaxx cp: a big file streams through a temp file; a lie or an oversize file is refused', () => {
  it('a 384 MiB download never sits in memory: the CLI peaks far below its size, and leaves only the finished file', async () => {
    const size = 384 * 1024 * 1024;
    const h1 = (w.agents[0] as { address: string }).address;
    const made = await w.gaxx(['exec', '--agent', h1, '--no-stdin', '--workdir', 'big', '--', 'sh', '-c', `truncate -s ${size} big.bin`]);
    expect(made.code, made.stderr).toBe(0);
    const dir = join(tmp, 'big');
    const rssFile = join(tmp, 'max-rss');
    const down = await runGaxx(['cp', '--json', '--host', 'h1', `${w.fleet}:big/big.bin`, dir], {
      home: w.home,
      env: { ...w.env, REPORT_MAX_RSS_FILE: rssFile },
      nodeArgs: ['--import', pathToFileURL(join(repoRoot(), 'test', 'fixtures', 'report-max-rss.mjs')).href],
    });
    expect(down.code, down.stderr).toBe(0);
    const [row] = JSON.parse(down.stdout) as Row[];
    expect(statSync(join(dir, 'h1', 'big.bin')).size).toBe(size);
    expect(row?.sha256).toBe(await fileSha(join(dir, 'h1', 'big.bin')));
    expect(readdirSync(join(dir, 'h1'))).toEqual(['big.bin']);
    // Held whole, the file alone would be 384 MiB (twice that with the copy joining its chunks).
    expect(Number(readFileSync(rssFile, 'utf8')) * 1024).toBeLessThan(size / 2);
  });

  it('an agent sending more than its header announced: CHECKSUM_MISMATCH, stopped early, nothing left in the host folder', async () => {
    const liar = await startStandInAgent(await homeAgentCerts(w.home, 'adhoc', 'liar'), '127.0.0.1', {
      getFile: { announce: 1024 * 1024, send: 256 * 1024 * 1024 },
    });
    try {
      const dir = join(tmp, 'lied');
      const r = await w.gaxx(['cp', '--json', '--agent', liar.address, ':lie.bin', dir]);
      expect(r.code, r.stderr).toBe(exitCodeFor('CHECKSUM_MISMATCH'));
      expect((JSON.parse(r.stdout) as Row[])[0]?.error?.code).toBe('CHECKSUM_MISMATCH');
      expect(await liar.getFileEnded).toBeLessThan(64 * 1024 * 1024);
      for (const host of readdirSync(dir)) expect(readdirSync(join(dir, host)), host).toEqual([]);
    } finally {
      await liar.close();
    }
  });

  it("a local file over the agents' limit is refused before any agent is called (INVALID_ARGUMENT)", async () => {
    const standIn = await startStandInAgent(await homeAgentCerts(w.home, 'adhoc', 'big-in'));
    try {
      const file = join(tmp, 'over.bin');
      writeFileSync(file, '');
      truncateSync(file, MAX_FILE_BYTES + 1);
      const r = await w.gaxx(['cp', '--agent', standIn.address, file, ':over.bin']);
      expect(r.code, r.stderr).toBe(exitCodeFor('INVALID_ARGUMENT'));
      expect(standIn.calls.filter((c) => c.method === 'PutFile')).toEqual([]);
    } finally {
      await standIn.close();
    }
  });
});

describe('--workdir: what a task writes is kept for gaxx cp', () => {
  it("run --workdir on every host, then cp back each host's file; exec --workdir sees it; a bad --workdir is USAGE before anything runs", async () => {
    const run = await w.gaxx(['run', '--fleet', w.fleet, '--workdir', 'job/out', '--', 'sh', '-c', 'pwd > where.txt; hostname >> where.txt']);
    expect(run.code, run.stderr).toBe(0);
    const dir = join(tmp, 'reports');
    const down = await w.gaxx(['cp', '--json', `${w.fleet}:job/out/where.txt`, dir]);
    expect(down.code, down.stderr).toBe(0);
    for (const h of w.hosts) expect(readFileSync(join(dir, h, 'where.txt'), 'utf8')).toMatch(/\/job\/out\n/);
    const agent = (w.agents[0] as { address: string }).address;
    const exec = await w.gaxx(['exec', '--agent', agent, '--workdir', 'job/out', '--', 'cat', 'where.txt']);
    expect(exec.code, exec.stderr).toBe(0);
    expect(exec.stdout).toMatch(/\/job\/out\n/);
    for (const bad of ['../up', '/abs', 'tasks/x', '.', '']) {
      for (const cmd of [
        ['run', '--fleet', w.fleet],
        ['exec', '--agent', agent],
      ]) {
        const r = await w.gaxx([...cmd, '--json', '--workdir', bad, '--', 'touch', 'never']);
        expect(r.code, `${cmd[0]} --workdir '${bad}': ${r.stderr}`).toBe(exitCodeFor('USAGE'));
      }
    }
  });
});

describe('gaxx cp: a download never goes where another user could redirect it', () => {
  it('LOCALDIR others may write to (not sticky), or of another user, or a <host> folder that is a symlink: INSECURE_FILE_MODE, nothing written there', async () => {
    const file = join(tmp, 'plant.txt');
    writeFileSync(file, 'from the fleet\n');
    expect((await w.gaxx(['cp', file, `${w.fleet}:plant.txt`])).code).toBe(0);
    const open = join(tmp, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const r = await w.gaxx(['cp', '--json', `${w.fleet}:plant.txt`, open]);
    expect(r.code, r.stderr).toBe(exitCodeFor('INSECURE_FILE_MODE'));
    expect(readdirSync(open)).toEqual([]);
    // Sticky (as /tmp): others cannot rename what gaxx makes there.
    chmodSync(open, 0o1777);
    expect((await w.gaxx(['cp', `${w.fleet}:plant.txt`, open])).code).toBe(0);
    for (const h of w.hosts) expect(readFileSync(join(open, h, 'plant.txt'), 'utf8')).toBe('from the fleet\n');

    const victim = join(tmp, 'victim');
    mkdirSync(victim);
    const dl = join(tmp, 'dl');
    mkdirSync(dl);
    const [first, ...rest] = w.hosts as [string, ...string[]];
    symlinkSync(victim, join(dl, first));
    const s = await w.gaxx(['cp', '--json', `${w.fleet}:plant.txt`, dl]);
    expect(s.code, s.stderr).toBe(exitCodeFor('INSECURE_FILE_MODE'));
    const rows = JSON.parse(s.stdout) as Row[];
    expect(rows.map((x) => [x.host, x.ok, x.error?.code])).toEqual([[first, false, 'INSECURE_FILE_MODE'], ...rest.map((h) => [h, true, undefined])]);
    expect(readdirSync(victim)).toEqual([]);

    if (process.getuid?.() === 0) {
      const theirs = join(tmp, 'theirs');
      mkdirSync(theirs);
      chownSync(theirs, 65534, 65534);
      const t = await w.gaxx(['cp', `${w.fleet}:plant.txt`, theirs]);
      expect(t.code, t.stderr).toBe(exitCodeFor('INSECURE_FILE_MODE'));
      expect(readdirSync(theirs)).toEqual([]);
    }
  });
});

describe('gaxx status', () => {
  it('shows every agent of the fleet; names an unreachable one (exit 12)', async () => {
    const r = await w.gaxx(['status', w.fleet, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(rows.map((x) => x.host)).toEqual(w.hosts);
    for (const x of rows) expect(x).toMatchObject({ reachable: true, uid: 65534, capacity: 16, runningTasks: 0, breaker: 'unknown' });
    const down = await w.gaxx(['status', '--agent', `${(w.agents[0] as { address: string }).address},127.0.0.1:1`, '--timeout', '3s']);
    expect(down.code).toBe(exitCodeFor('UNAVAILABLE'));
    // The table on stdout, why a host did not answer on stderr.
    expect(down.stdout).toMatch(/^127\.0\.0\.1:1 +127\.0\.0\.1:1 +NO /m);
    expect(down.stdout).not.toContain('UNAVAILABLE');
    expect(down.stderr).toMatch(/^gaxx: unreachable: 127\.0\.0\.1:1 \(UNAVAILABLE/m);
    expect((await w.gaxx(['status', 'nofleet'])).code).toBe(exitCodeFor('NOT_FOUND'));
  });

  it('honours the global --deadline-ms (and GAXX_DEADLINE_MS) as every command that calls agents does; its own --timeout wins', async () => {
    const rows = (r: { stdout: string }) => JSON.parse(r.stdout) as Array<{ reachable: boolean; error?: { code: string } }>;
    // Each agent behind a relay that holds its answers 50 ms: a call's 1 ms deadline always passes
    // first (straight to a local agent, a call on a fast machine can be answered within 1 ms).
    const relays = await Promise.all(w.agents.map((a) => new TcpRelay(a, { delayMs: 50 }).start()));
    try {
      const agents = relays.map((r) => r.address).join(',');
      for (const args of [
        ['status', '--agent', agents, '--deadline-ms=1', '--json'],
        ['--deadline-ms', '1', 'status', '--agent', agents, '--json'],
      ]) {
        const r = await w.gaxx(args);
        expect({ args, code: r.code }).toEqual({ args, code: exitCodeFor('UNAVAILABLE') });
        // Every row unreachable by the deadline; any other is shown whole when the case fails.
        expect(rows(r)).toHaveLength(w.agents.length);
        expect(rows(r).filter((x) => x.reachable || x.error?.code !== 'DEADLINE_EXCEEDED')).toEqual([]);
      }
      const env = await runGaxx(['status', '--agent', agents, '--json'], { home: w.home, env: { ...w.env, GAXX_DEADLINE_MS: '1' } });
      expect(env.code).toBe(exitCodeFor('UNAVAILABLE'));
      expect(rows(env).filter((x) => x.reachable || x.error?.code !== 'DEADLINE_EXCEEDED')).toEqual([]);
    } finally {
      await Promise.all(relays.map((r) => r.close()));
    }
    const own = await w.gaxx(['status', w.fleet, '--deadline-ms=1', '--timeout', '10s', '--json']);
    expect(own.code, own.stderr).toBe(0);
    expect(rows(own).every((x) => x.reachable)).toBe(true);
  });
});
