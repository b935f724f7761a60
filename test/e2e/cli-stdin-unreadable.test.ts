// A stdin the built CLI cannot read is never taken as empty input: a directory (`< /tmp`: Node
// would hand over a stream that ends at once) or a descriptor open only for writing (`0>>file`:
// EBADF) is FILE_ACCESS (exit 3) naming stdin and the errno, for `run --tasks -` before any run
// exists, and for `exec` before anything is sent. A task list whose read fails once the run
// exists (a connection reset, EIO) ends the run failed, with that error as its reason, and
// `gaxx runs`, `runs show`, `runs wait` and `run --resume` all say so (exit 3), against real agents.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { jsonLines, spawnGaxx, stopAllGaxx, type CliRun } from '../helpers/cli.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';

let w: CliWorld;
let agent: string;
let writeOnly: string;

beforeAll(async () => {
  w = await cliWorld(1);
  agent = (w.agents[0] as { address: string }).address;
  writeOnly = join(w.scratch('gxsu-'), 'write-only');
  writeFileSync(writeOnly, 'never read\n');
});
afterAll(async () => {
  await stopAllGaxx();
  await w?.close();
});

const FILE_ACCESS = exitCodeFor('FILE_ACCESS');

/** The run ids `gaxx runs` lists. */
async function runIds(): Promise<string[]> {
  const r = await w.gaxx(['runs', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Array<{ runId: string }>).map((x) => x.runId);
}

describe('a stdin that cannot be read', () => {
  const cases = [
    { redirect: '< /tmp', says: 'cannot read stdin (/tmp): stdin is a directory (EISDIR)' },
    { redirect: `0>>${'WRITE_ONLY'}`, says: 'stdin is not open for reading (EBADF)' },
  ];
  const redirectOf = (c: (typeof cases)[number]): string => c.redirect.replace('WRITE_ONLY', writeOnly);

  it('run --tasks -: FILE_ACCESS naming stdin and the errno, before any run exists', async () => {
    const before = await runIds();
    for (const c of cases) {
      const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--json', '--', 'echo'], { redirect: redirectOf(c) });
      expect({ redirect: c.redirect, code: r.code }).toEqual({ redirect: c.redirect, code: FILE_ACCESS });
      // No {"type":"run"} line, no summary: only the error.
      expect(jsonLines(r.stdout)).toEqual([{ error: expect.objectContaining({ code: 'FILE_ACCESS', exitCode: FILE_ACCESS }) }]);
      expect(r.stderr).toContain(c.says);
      const human = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--', 'echo'], { redirect: redirectOf(c) });
      expect(human.code, human.stderr).toBe(FILE_ACCESS);
      expect(human.stderr).toContain(`${c.says} [FILE_ACCESS]`);
    }
    expect(await runIds()).toEqual(before);
  });

  it('exec, forwarding stdin or with --stdin -: FILE_ACCESS, and the command is not run with an empty stdin', async () => {
    for (const c of cases) {
      for (const flags of [[], ['--stdin', '-']]) {
        const r = await w.gaxx(['exec', '--agent', agent, ...flags, '--', 'wc', '-c'], { redirect: redirectOf(c) });
        expect({ redirect: c.redirect, flags, code: r.code, stdout: r.stdout }).toEqual({ redirect: c.redirect, flags, code: FILE_ACCESS, stdout: '' });
        expect(r.stderr).toContain(`${c.says} [FILE_ACCESS]`);
      }
    }
    // A stdin that can be read is sent as ever; /dev/null is none.
    const piped = await w.gaxx(['exec', '--agent', agent, '--', 'wc', '-c'], { input: 'abc\n' });
    expect([piped.code, piped.stdout.trim()]).toEqual([0, '4']);
    const none = await w.gaxx(['exec', '--agent', agent, '--', 'wc', '-c'], { redirect: '< /dev/null' });
    expect([none.code, none.stdout.trim()]).toEqual([0, '0']);
  });
});

describe('a task list whose read fails once its run exists', () => {
  let server: Server | undefined;
  afterAll(() => server?.close());

  /** The run as `runs wait`, `run --resume` and `runs show` give it: each says it failed, and why. */
  async function failedEverywhere(runId: string, says: string, summary: Record<string, unknown>): Promise<void> {
    for (const args of [
      ['runs', 'wait', runId, '--json'],
      ['run', '--resume', runId, '--json'],
      ['runs', 'wait', runId, '--json'],
    ]) {
      const r: CliRun = await w.gaxx(args);
      expect({ args, code: r.code }).toEqual({ args, code: FILE_ACCESS });
      expect(jsonLines(r.stdout).at(-1)).toMatchObject({ type: 'summary', ...summary, state: 'failed', failure: { code: 'FILE_ACCESS' } });
      expect(r.stderr).toContain(`run ${runId} failed: `);
      expect(r.stderr).toContain(says);
    }
    const show = await w.gaxx(['runs', 'show', runId]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^run ${runId}: failed, `));
    expect(show.stdout).toContain(`failed: `);
    expect(show.stdout).toContain(says);
    const listed = await w.gaxx(['runs', '--json']);
    expect((JSON.parse(listed.stdout) as Array<Record<string, unknown>>).find((r) => r.runId === runId)).toMatchObject({
      state: 'failed',
      failure: { code: 'FILE_ACCESS' },
    });
  }

  it('stdin reset mid-stream (ECONNRESET): the run stops there and fails, its task still running cancelled; runs, runs wait and --resume agree', async () => {
    // stdin is a TCP connection: two records, then a reset (a read error, not an end) while the
    // second one's task still waits or runs.
    const accepted = new Promise<Socket>((resolve) => {
      server = createServer({ pauseOnConnect: true }, resolve);
    });
    const srv = server as unknown as Server;
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const client = connect((srv.address() as { port: number }).port, '127.0.0.1');
    client.on('error', () => undefined);
    const ours = await accepted;
    // Its descriptor is the CLI's stdin; this process never reads it (paused since accepted).
    const fd = (ours as unknown as { _handle: { fd: number } })._handle.fd;
    const cmd = ['sh', '-c', 'echo "$1"; [ "$1" != slow ] || exec sleep 600', '_', '{}'];
    const run = spawnGaxx(['run', '--fleet', w.fleet, '--tasks', '-', '--json', '--', ...cmd], { home: w.home, env: w.env, fds: [[0, fd]] });
    client.write('fast\nslow\n');
    // Both records were enqueued together: once the first has its result, the second is queued or running.
    await run.line('stdout', (l) => l.includes('"type":"task"') && l.includes('"taskId":"1"'));
    client.resetAndDestroy();
    const end = await run.done;
    ours.destroy();
    const says = 'cannot read stdin: the connection stdin reads from was reset (ECONNRESET)';
    expect(end.code, end.stderr).toBe(FILE_ACCESS);
    const lines = jsonLines(end.stdout);
    const runId = lines[0]?.runId as string;
    const summary = { total: 2, succeeded: 1, cancelled: 1, notEnqueuedFrom: 3 };
    expect(lines.at(-1)).toMatchObject({ type: 'summary', ...summary, state: 'failed', failure: { code: 'FILE_ACCESS', message: says } });
    expect(end.stderr).toContain(`gaxx: run ${runId} failed: ${says} [FILE_ACCESS]; records from 3 on were never enqueued`);
    await failedEverywhere(runId, says, summary);
  });

  it('a --tasks file whose first read fails (EIO): the run failed with nothing enqueued; --resume says so too, not unknown', async () => {
    // /proc/self/mem: a regular file the CLI opens, whose first read (address 0) fails with EIO.
    const r = await w.gaxx(['run', '--fleet', w.fleet, '--tasks', '/proc/self/mem', '--json', '--', 'echo', '{}']);
    expect(r.code, r.stderr).toBe(FILE_ACCESS);
    const lines = jsonLines(r.stdout);
    const says = 'cannot read --tasks /proc/self/mem: EIO';
    expect(lines.at(-1)).toMatchObject({ type: 'summary', total: 0, state: 'failed', notEnqueuedFrom: 1, failure: { code: 'FILE_ACCESS' } });
    expect(r.stderr).toContain(says);
    await failedEverywhere(lines[0]?.runId as string, says, { total: 0, notEnqueuedFrom: 1 });
  });
});
