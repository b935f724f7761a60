// Command-line words that are not UTF-8, as the built CLI gets them from a shell
// (`-- rm $'name\xff'`): Node decodes argv lossily (each such byte becomes U+FFFD), so without a
// check the task would run on another name. Every such word, wherever it stands (the command
// after --, an --env value, --workdir, a cp path), is USAGE before anything is sent or queued,
// naming it; a U+FFFD typed as such is valid UTF-8 and reaches the task unchanged.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { runGaxx, type CliRun } from '../helpers/cli.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';

let w: CliWorld;
let agent: string;
const bytes = (...parts: (string | number[])[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
const gaxx = (args: (string | Buffer)[]): Promise<CliRun> => runGaxx(args, { home: w.home, env: w.env });

beforeAll(async () => {
  w = await cliWorld(1);
  agent = (w.agents[0] as { address: string }).address;
});
afterAll(async () => {
  await w?.close();
});

describe('a command-line word that is not UTF-8', () => {
  it('in the command after --: exec and run refuse it (USAGE, naming it) and nothing runs', async () => {
    // Were it sent, the task would print 'ran'.
    const cmd = ['sh', '-c', 'printf ran', bytes('name', [0xff])];
    const exec = await gaxx(['exec', '--agent', agent, '--', ...cmd]);
    expect(exec.code, exec.stderr).toBe(exitCodeFor('USAGE'));
    expect(exec.stderr).toContain("argument 4 of the command after -- ('name\\xff') is not valid UTF-8");
    expect(exec.stdout).toBe('');
    const run = await gaxx(['run', '--fleet', w.fleet, '--json', '--', ...cmd]);
    expect(run.code, run.stderr).toBe(exitCodeFor('USAGE'));
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { code: 'USAGE' } });
    const tasks = join(w.scratch('gxb-'), 'list');
    writeFileSync(tasks, 'a\n');
    const list = await gaxx(['run', '--agent', agent, '--tasks', tasks, '--', 'printf', bytes([0xfe], '%s'), '{}']);
    expect(list.code, list.stderr).toBe(exitCodeFor('USAGE'));
    expect(list.stdout).toBe('');
  });

  it('in a flag value or a path (--env, --workdir, a cp path, --tasks): USAGE naming it', async () => {
    const dir = w.scratch('gxb-');
    const bad = [
      ['exec', '--agent', agent, '--env', bytes('K=', [0xc3]), '--', 'true'],
      ['exec', '--agent', agent, bytes('--workdir=d', [0xff]), '--', 'true'],
      ['run', '--fleet', w.fleet, '--env', bytes('K=', [0xe2, 0x82]), '--', 'true'],
      ['cp', join(dir, 'f'), bytes(`${w.fleet}:x`, [0xff])],
      ['cp', bytes(join(dir, 'f'), [0x80]), `${w.fleet}:x`],
      ['run', '--fleet', w.fleet, '--tasks', bytes(join(dir, 't'), [0xff]), '--', 'echo'],
    ];
    for (const args of bad) {
      const r = await gaxx(args);
      expect({ args: String(args), code: r.code }).toEqual({ args: String(args), code: exitCodeFor('USAGE') });
      expect(r.stderr).toMatch(/^gaxx: the argument '[^']*\\x[0-9a-f]{2}'.* is not valid UTF-8/);
    }
  });

  it('a U+FFFD typed as such is UTF-8: it reaches the task unchanged', async () => {
    const r = await gaxx(['exec', '--agent', agent, '--', 'printf', '%s', bytes('a\uFFFDb')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdoutBytes).toEqual(Buffer.from('a\uFFFDb'));
  });
});
