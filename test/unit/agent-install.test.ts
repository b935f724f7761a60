// The shared install place of the agent bundle (<tmpdir>/gaxx-agent-<hash>, used by the test
// helpers and benches): each build leaves one there; those of other builds that nothing has
// installed for a day are removed, and only those.
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { installAgentBundle, STALE_INSTALL_MS } from '../../cli/providers/agent-bundle.js';

let root: string;
let savedTmp: string | undefined;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'gaxx-install-'));
  savedTmp = process.env.TMPDIR;
  process.env.TMPDIR = join(root, 'tmp');
  mkdirSync(process.env.TMPDIR);
});

afterEach(() => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  rmSync(root, { recursive: true, force: true });
});

/** A bundle to install (its bytes make the install dir's name). */
function bundle(text: string): string {
  const dir = mkdtempSync(join(root, 'src-'));
  const p = join(dir, 'gaxx-agent.mjs');
  writeFileSync(p, text);
  return p;
}

/** A dir (or file) in the temp dir whose last use was `ageMs` ago. */
function aged(name: string, ageMs: number, kind: 'dir' | 'file' = 'dir'): string {
  const p = join(process.env.TMPDIR as string, name);
  if (kind === 'dir') mkdirSync(p, { mode: 0o755 });
  else writeFileSync(p, 'x');
  const at = new Date(Date.now() - ageMs);
  utimesSync(p, at, at);
  return p;
}

describe('installAgentBundle in the shared place', () => {
  it("removes other builds' installs unused for a day, and nothing else", () => {
    const stale = aged('gaxx-agent-aaaaaaaaaaaaaaaa', STALE_INSTALL_MS + 3600_000);
    const recent = aged('gaxx-agent-bbbbbbbbbbbbbbbb', STALE_INSTALL_MS - 3600_000);
    const otherName = aged('gaxx-agent-notahash', 10 * STALE_INSTALL_MS);
    const aFile = aged('gaxx-agent-cccccccccccccccc', 10 * STALE_INSTALL_MS, 'file');
    const main = installAgentBundle({ source: bundle('one build'), version: '1.0.0' });
    expect(dirname(main)).toMatch(/\/gaxx-agent-[0-9a-f]{16}$/);
    expect(existsSync(main)).toBe(true);
    expect(existsSync(stale)).toBe(false);
    for (const p of [recent, otherName, aFile]) expect(existsSync(p)).toBe(true);
  });

  it('keeps its own install young: installing again marks it used', () => {
    const source = bundle('another build');
    const dir = dirname(installAgentBundle({ source, version: '1.0.0' }));
    const old = new Date(Date.now() - 2 * STALE_INSTALL_MS);
    utimesSync(dir, old, old);
    // Another build's install finds it stale only if nothing installed it since.
    installAgentBundle({ source, version: '1.0.0' });
    expect(Date.now() - statSync(dir).mtimeMs).toBeLessThan(STALE_INSTALL_MS);
    installAgentBundle({ source: bundle('a third build'), version: '1.0.0' });
    expect(existsSync(dir)).toBe(true);
  });

  it('leaves a directory given by the caller, and its neighbours, alone', () => {
    const stale = aged('gaxx-agent-dddddddddddddddd', 2 * STALE_INSTALL_MS);
    const target = join(process.env.TMPDIR as string, 'mine');
    const main = installAgentBundle({ source: bundle('given dir'), dir: target, version: '1.0.0' });
    expect(main).toBe(join(target, 'gaxx-agent.mjs'));
    expect(existsSync(stale)).toBe(true);
  });
});
