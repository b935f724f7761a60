// Every bench entry (bench/*.ts; helpers live in bench/lib) answers --help with its usage and
// refuses an unknown flag with exit 2 before it starts anything, so a mistyped flag never starts
// a long run with the defaults. Run against the built benches.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BENCHES = readdirSync(join(ROOT, 'bench'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3));

function run(name: string, arg: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'bench', `${name}.js`), arg], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bench command lines', () => {
  it('finds the benches', () => {
    expect(BENCHES).toEqual(expect.arrayContaining(['agent-exec', 'fanout', 'scheduler', 'startup']));
  });

  it.each(BENCHES)('%s: --help prints its usage and exits 0; an unknown flag exits 2 with the usage', (name) => {
    const help = run(name, '--help');
    expect(help.status).toBe(0);
    expect(help.stdout.startsWith(`usage: node dist/bench/${name}.js`)).toBe(true);
    const bad = run(name, '--no-such-flag');
    expect(bad.status).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain("'--no-such-flag'");
    expect(bad.stderr).toContain(`usage: node dist/bench/${name}.js`);
  });
});
