// A stdin the built CLI cannot read is never taken as empty input: a directory (`< /tmp`: Node
// would hand over a stream that ends at once) or a descriptor open only for writing (`0>>file`:
// EBADF) is FILE_ACCESS (exit 3) naming stdin and the errno, for `run --tasks -` before any run
// exists, and for `exec` before anything is sent, against real agents.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { jsonLines } from '../helpers/cli.js';
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
