// The built CLI on a terminal (script(1): stdout and stderr a pseudo-terminal), against real
// agents: colour and the in-place progress line only for a terminal that takes escape sequences.
// TERM=dumb, or no TERM at all, gets plain text; NO_COLOR (not empty) turns colour off alone.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnGaxx } from '../helpers/cli.js';
import { cliWorld, type CliWorld } from '../helpers/cli-world.js';

let w: CliWorld;
let list: string;

beforeAll(async () => {
  w = await cliWorld(2);
  list = join(w.scratch('gxt-'), 't4.txt');
  writeFileSync(list, 'r1\nr2\nr3\nr4\n');
});

afterAll(async () => {
  await w?.close();
});

/** What `gaxx run` of a 4-task list (each ~0.5 s: the progress line is drawn meanwhile) shows on a terminal with `env`. */
async function onTerminal(env: Record<string, string>): Promise<string> {
  const run = spawnGaxx(['run', '--fleet', w.fleet, '--tasks', list, '--', 'sh', '-c', 'sleep 0.5; echo got-$1', '_', '{}'], {
    env: { ...w.env, ...env },
    terminal: true,
  });
  run.child.stdin?.end();
  const end = await run.done;
  expect(end.code, end.stdout + end.stderr).toBe(0);
  for (const r of ['r1', 'r2', 'r3', 'r4']) expect(end.stdout).toContain(`got-${r}`);
  return end.stdout;
}

/** A colour the CLI paints with (30-37, 90-97). */
// eslint-disable-next-line no-control-regex
const COLOUR = /\x1b\[[39]\dm/;
const REDRAW = '\r\x1b[2K';

describe('gaxx run on a terminal', () => {
  it('TERM=xterm: host labels in colour and a progress line redrawn in place', async () => {
    const shown = await onTerminal({ TERM: 'xterm' });
    expect(shown).toMatch(COLOUR);
    expect(shown).toContain(REDRAW);
  });

  it.each([
    ['TERM=dumb', { TERM: 'dumb' }],
    ['no TERM', {}],
  ])('%s: no escape sequence at all (no colour, no line redrawn)', async (_name, env) => {
    expect(await onTerminal(env)).not.toContain('\x1b');
  });

  it('NO_COLOR=1: no colour, the progress line still drawn; an empty NO_COLOR leaves colour on', async () => {
    const plain = await onTerminal({ TERM: 'xterm', NO_COLOR: '1' });
    expect(plain).not.toMatch(COLOUR);
    expect(plain).toContain(REDRAW);
    expect(await onTerminal({ TERM: 'xterm', NO_COLOR: '' })).toMatch(COLOUR);
  });
});

describe("one host's output on a terminal", () => {
  it('reaches it with its control characters escaped (an OSC 52 clipboard write, a cursor move), not as commands to the terminal', async () => {
    const agent = w.agents[0]?.address as string;
    const run = spawnGaxx(['run', '--agent', agent, '--', 'printf', 'X\\033]52;c;UFdO\\007Y\\n\\033[1A\\r== forged\\n'], {
      env: { ...w.env, TERM: 'xterm' },
      terminal: true,
    });
    run.child.stdin?.end();
    const end = await run.done;
    expect(end.code, end.stdout + end.stderr).toBe(0);
    expect(end.stdout).toContain('X\\x1b]52;c;UFdO\\x07Y');
    expect(end.stdout).toContain('\\x1b[1A\\r== forged');
    expect(end.stdout).not.toContain('\x1b]52');
    expect(end.stdout).not.toContain('\x1b[1A');
  });
});
